"""Booking, rescheduling, cancelling and no-shows through the API, with bad input refused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from app.core.models import AuditEvent
from scheduling.models import Appointment, AppointmentStatus, OutboxMessage
from tests.conftest import bearer_login
from tests.scheduling.conftest import at, book_body, next_weekday


async def _book(client, headers, cal, start):
    return await client.post("/api/appointments", json=book_body(cal, start), headers=headers)


async def test_book_then_the_slot_is_gone_and_a_second_booking_is_409(client, sched):
    cal = await sched.calendar()
    headers = await bearer_login(client, cal.scheduler)
    monday = next_weekday(0)
    slots_url = (
        f"/api/providers/{cal.provider.id}/slots?appointment_type_id={cal.kind.id}"
        f"&from={monday}&to={monday}&tz=Europe/Madrid"
    )
    before = await (await client.get(slots_url, headers=headers)).json()
    assert before["timezone"] == "Europe/Madrid"
    assert before["provider_timezone"] == "America/New_York"
    assert len(before["slots"]) == 6  # 09:00-12:00 in 30-minute slots
    start = at(monday, 9, 30)
    resp = await _book(client, headers, cal, start)
    assert resp.status == 201, await resp.text()
    booked = await resp.json()
    assert booked["status"] == "booked"
    assert booked["join_url"].startswith("http://") and "/j/" in booked["join_url"]
    after = await (await client.get(slots_url, headers=headers)).json()
    assert len(after["slots"]) == 5
    assert start.isoformat().replace("+00:00", "Z") not in [s["start"] for s in after["slots"]]

    again = await _book(client, headers, cal, start)
    assert again.status == 409
    error = (await again.json())["error"]
    assert error["code"] == "conflict" and "already booked" in error["message"]
    assert error["fields"] == {"start": "already booked"}


async def test_concurrent_bookings_in_one_process_give_one_success(client, sched):
    cal = await sched.calendar()
    headers = await bearer_login(client, cal.scheduler)
    start = at(next_weekday(1), 10)
    results = await asyncio.gather(*[_book(client, headers, cal, start) for _ in range(10)])
    statuses = sorted(r.status for r in results)
    assert statuses == [201] + [409] * 9


async def test_bad_input_names_the_field_and_writes_nothing(client, sched, db):
    cal = await sched.calendar()
    headers = await bearer_login(client, cal.scheduler)
    monday = next_weekday(0)
    past = datetime.now(UTC) - timedelta(days=1)
    cases = [
        ({**book_body(cal, past)}, "start"),
        ({**book_body(cal, at(monday, 13))}, "start"),  # outside availability
        ({**book_body(cal, at(monday, 9, 10))}, "start"),  # not a slot boundary
        ({**book_body(cal, at(monday, 9)), "start": "2026-13-01T09:00"}, "start"),
        ({**book_body(cal, at(monday, 9)), "start": "2027-01-04T09:00:00"}, "start"),  # naive
        ({**book_body(cal, at(monday, 9)), "patient_id": "nope"}, "patient_id"),
        (
            {k: v for k, v in book_body(cal, at(monday, 9)).items() if k != "provider_id"},
            "provider_id",
        ),
        ({**book_body(cal, at(monday, 9)), "surprise": 1}, "surprise"),
    ]
    for body, field in cases:
        resp = await client.post("/api/appointments", json=body, headers=headers)
        assert 400 <= resp.status < 500, (body, resp.status)
        error = (await resp.json())["error"]
        assert field in error["fields"], (body, error)
    resp = await client.post(
        "/api/appointments",
        data=b"{not json",
        headers=headers | {"Content-Type": "application/json"},
    )
    assert resp.status == 400
    async with db.session() as session:
        assert (await session.exec(select(Appointment))).all() == []
        assert (await session.exec(select(OutboxMessage))).all() == []


async def test_schedule_bad_input(client, sched):
    cal = await sched.calendar()
    headers = await bearer_login(client, cal.scheduler)
    url = f"/api/providers/{cal.provider.id}/schedule"
    good_rule = {"weekday": 0, "start": "09:00", "end": "12:00"}
    cases = [
        ({"timezone": "Mars/Olympus", "rules": [good_rule]}, "timezone"),
        (
            {
                "timezone": "America/New_York",
                "rules": [{"weekday": 0, "start": "12:00", "end": "09:00"}],
            },
            "rules.0.end",
        ),
        (
            {
                "timezone": "America/New_York",
                "rules": [good_rule, {"weekday": 0, "start": "11:00", "end": "13:00"}],
            },
            "rules.1",
        ),
        (
            {
                "timezone": "America/New_York",
                "rules": [{"weekday": 7, "start": "09:00", "end": "10:00"}],
            },
            "rules.0.weekday",
        ),
    ]
    for body, field in cases:
        resp = await client.put(url, json=body, headers=headers)
        assert resp.status == 400, (body, resp.status)
        assert field in (await resp.json())["error"]["fields"], body
    # Nothing half-written: the old rules are still there.
    schedule = await (await client.get(url, headers=headers)).json()
    assert schedule["timezone"] == "America/New_York" and len(schedule["rules"]) == 5

    resp = await client.put(
        url,
        json={"timezone": "Europe/Berlin", "min_notice_minutes": 0, "rules": [good_rule]},
        headers=headers,
    )
    assert resp.status == 200
    assert (await resp.json())["rules"] == [{"weekday": 0, "start": "09:00:00", "end": "12:00:00"}]

    exc_url = f"/api/providers/{cal.provider.id}/exceptions"
    past_day = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    resp = await client.post(exc_url, json={"day": past_day, "kind": "off"}, headers=headers)
    assert resp.status == 400 and "day" in (await resp.json())["error"]["fields"]
    resp = await client.post(
        exc_url,
        json={"day": str(next_weekday(0)), "kind": "extra", "start": "15:00", "end": "14:00"},
        headers=headers,
    )
    assert resp.status == 400 and "end" in (await resp.json())["error"]["fields"]
    slots_q = f"/api/providers/{cal.provider.id}/slots?appointment_type_id={cal.kind.id}"
    resp = await client.get(slots_q + "&from=2026-01-01&to=2026-01-10", headers=headers)
    assert resp.status == 400 and (await resp.json())["error"]["fields"] == {"to": "in the past"}
    resp = await client.get(slots_q + "&from=2027-01-10&to=2027-01-01", headers=headers)
    assert resp.status == 400 and "to" in (await resp.json())["error"]["fields"]
    resp = await client.get(
        slots_q + "&from=2027-01-01&to=2027-01-02&tz=Nowhere/City", headers=headers
    )
    assert resp.status == 400 and "tz" in (await resp.json())["error"]["fields"]


async def test_time_off_removes_slots_and_extra_hours_add_them(client, sched):
    cal = await sched.calendar()
    headers = await bearer_login(client, cal.scheduler)
    monday = next_weekday(0)
    exc_url = f"/api/providers/{cal.provider.id}/exceptions"
    assert (
        await client.post(exc_url, json={"day": str(monday), "kind": "off"}, headers=headers)
    ).status == 201
    sunday = monday - timedelta(days=1)
    body = {"day": str(sunday), "kind": "extra", "start": "10:00", "end": "11:00"}
    assert (await client.post(exc_url, json=body, headers=headers)).status == 201
    body = {"day": str(sunday), "kind": "extra", "start": "15:00", "end": "16:00"}
    withdrawn = await (await client.post(exc_url, json=body, headers=headers)).json()
    resp = await client.delete(f"{exc_url}/{withdrawn['id']}", headers=headers)
    assert resp.status == 204
    assert (await client.delete(f"{exc_url}/{withdrawn['id']}", headers=headers)).status == 404
    url = (
        f"/api/providers/{cal.provider.id}/slots?appointment_type_id={cal.kind.id}"
        f"&from={sunday}&to={monday}"
    )
    slots = (await (await client.get(url, headers=headers)).json())["slots"]
    assert [s["local_start"][11:16] for s in slots] == ["10:00", "10:30"]
    assert all(s["local_start"].startswith(str(sunday)) for s in slots)


async def test_dst_change_in_the_api_keeps_local_nine(client, sched):
    cal = await sched.calendar()
    headers = await bearer_login(client, cal.scheduler)
    # The next US spring-forward after today (2027-03-14 from late 2026).
    url = (
        f"/api/providers/{cal.provider.id}/slots?appointment_type_id={cal.kind.id}"
        "&from=2027-03-12&to=2027-03-15"
    )
    body = await (await client.get(url, headers=headers)).json()
    firsts = {}
    for slot in body["slots"]:
        firsts.setdefault(slot["local_start"][:10], slot)
    assert firsts["2027-03-12"]["local_start"] == "2027-03-12T09:00:00-05:00"
    assert firsts["2027-03-12"]["start"] == "2027-03-12T14:00:00Z"
    assert firsts["2027-03-15"]["local_start"] == "2027-03-15T09:00:00-04:00"
    assert firsts["2027-03-15"]["start"] == "2027-03-15T13:00:00Z"


async def test_reschedule_cancel_and_rebook_rules(client, sched, db):
    cal = await sched.calendar()
    headers = await bearer_login(client, cal.scheduler)
    monday = next_weekday(0)
    first = await (await _book(client, headers, cal, at(monday, 9))).json()
    other = await (await _book(client, headers, cal, at(monday, 10))).json()

    taken = await client.post(
        f"/api/appointments/{first['id']}/reschedule",
        json={"start": at(monday, 10).isoformat()},
        headers=headers,
    )
    assert taken.status == 409 and (await taken.json())["error"]["fields"] == {
        "start": "already booked"
    }

    moved = await client.post(
        f"/api/appointments/{first['id']}/reschedule",
        json={"start": at(monday, 11).isoformat()},
        headers=headers,
    )
    assert moved.status == 200
    moved_body = await moved.json()
    assert moved_body["start"] == at(monday, 11).isoformat().replace("+00:00", "Z")
    assert moved_body["join_url"] != first["join_url"]

    resp = await client.post(
        f"/api/appointments/{other['id']}/cancel", json={"reason": ""}, headers=headers
    )
    assert resp.status == 400 and "reason" in (await resp.json())["error"]["fields"]
    resp = await client.post(
        f"/api/appointments/{other['id']}/cancel", json={"reason": "Patient asked"}, headers=headers
    )
    assert resp.status == 200
    assert (await resp.json())["status"] == "cancelled"
    # The cancelled time is free again and can be booked by someone else.
    assert (await _book(client, headers, cal, at(monday, 10))).status == 201
    # A cancelled appointment cannot be moved or cancelled again.
    for action, body in (
        ("reschedule", {"start": at(monday, 9, 30).isoformat()}),
        ("cancel", {"reason": "x"}),
    ):
        resp = await client.post(
            f"/api/appointments/{other['id']}/{action}", json=body, headers=headers
        )
        assert resp.status == 409
        assert "cancelled" in (await resp.json())["error"]["message"]
    # No-show is only possible after the start.
    resp = await client.post(f"/api/appointments/{first['id']}/no-show", headers=headers)
    assert resp.status == 409


async def test_auto_noshow_marks_past_booked_appointments(client, sched, db, settings):
    from scheduling.tasks import sweep_noshows

    cal = await sched.calendar()
    past = datetime.now(UTC) - timedelta(hours=2)
    async with db.session() as session:
        appointment = Appointment(
            clinic_id=cal.clinic.id,
            provider_id=cal.provider.id,
            patient_id=cal.patient.id,
            appointment_type_id=cal.kind.id,
            start_at=past,
            end_at=past + timedelta(minutes=30),
            busy_until=past + timedelta(minutes=30),
        )
        recent = Appointment(
            clinic_id=cal.clinic.id,
            provider_id=cal.provider.id,
            patient_id=cal.patient.id,
            appointment_type_id=cal.kind.id,
            start_at=datetime.now(UTC) - timedelta(minutes=5),
            end_at=datetime.now(UTC) + timedelta(minutes=25),
            busy_until=datetime.now(UTC) + timedelta(minutes=25),
        )
        session.add_all([appointment, recent])
        await session.commit()
    assert await sweep_noshows(db, settings) == [appointment.id]
    async with db.session() as session:
        assert (await session.get(Appointment, appointment.id)).status == AppointmentStatus.NOSHOW
        assert (await session.get(Appointment, recent.id)).status == AppointmentStatus.BOOKED
        events = (
            await session.exec(
                select(AuditEvent).where(AuditEvent.action == "appointment.auto_noshow")
            )
        ).all()
    assert [e.patient_id for e in events] == [str(cal.patient.id)]
    headers = await bearer_login(client, cal.provider)
    resp = await client.post(f"/api/appointments/{recent.id}/no-show", headers=headers)
    assert resp.status == 200 and (await resp.json())["status"] == "noshow"


async def test_the_database_itself_refuses_overlaps(sched, db):
    """Not only the service: a raw insert or update that overlaps is refused by the database."""
    cal = await sched.calendar()
    start = at(next_weekday(0), 9)

    def appointment(begin, minutes=30, status=AppointmentStatus.BOOKED):
        return Appointment(
            clinic_id=cal.clinic.id,
            provider_id=cal.provider.id,
            patient_id=cal.patient.id,
            appointment_type_id=cal.kind.id,
            start_at=begin,
            end_at=begin + timedelta(minutes=minutes),
            busy_until=begin + timedelta(minutes=minutes),
            status=status,
        )

    first = appointment(start)
    async with db.session() as session:
        session.add(first)
        await session.commit()
    for clash in (
        appointment(start + timedelta(minutes=15)),
        appointment(start - timedelta(minutes=10), 15),
    ):
        async with db.session() as session:
            session.add(clash)
            with pytest.raises(sa.exc.IntegrityError, match="appointment_no_overlap"):
                await session.commit()
    # Touching ends are fine, and cancelled appointments hold no time.
    async with db.session() as session:
        session.add(appointment(start + timedelta(minutes=30)))
        session.add(appointment(start, status=AppointmentStatus.CANCELLED))
        await session.commit()
    later = appointment(start + timedelta(hours=2))
    async with db.session() as session:
        session.add(later)
        await session.commit()
    async with db.session() as session:
        row = await session.get(Appointment, later.id)
        row.start_at = start + timedelta(minutes=10)
        row.busy_until = start + timedelta(minutes=40)
        with pytest.raises(sa.exc.IntegrityError, match="appointment_no_overlap"):
            await session.commit()
