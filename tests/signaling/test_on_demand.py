"""On-demand visits: a clinic's walk-in queue, the public link, matching records, the shared
queue (fair order, any provider of it takes the next), closed hours and abuse limits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from sqlmodel import select

from app.core.db import Database
from app.core.models import AuditEvent, Clinic, Patient, Role
from scheduling.models import Appointment, AppointmentType, ProviderSchedule
from signaling.ondemand.hours import OpenHours, is_open, next_opening
from signaling.queue.places import WaitingPatient, queue_places
from tests.conftest import Factory, StaffAccount
from tests.signaling.conftest import cookie_header, daytime_zone, staff_headers

ALWAYS = [{"weekday": d, "start": "00:00", "end": "00:00"} for d in range(7)]


async def open_queue(
    client: Any,
    admin_headers: dict[str, str],
    kind: AppointmentType,
    providers: list[StaffAccount],
    *,
    code: str | None = None,
    hours: list[dict[str, Any]] | None = None,
) -> str:
    code = code or f"walk-{uuid.uuid4().hex[:8]}"
    resp = await client.put(
        "/api/on-demand",
        json={
            "code": code,
            "enabled": True,
            "hours": ALWAYS if hours is None else hours,
            "appointment_type_id": str(kind.id),
            "provider_ids": [str(p.id) for p in providers],
        },
        headers=admin_headers,
    )
    assert resp.status == 200, await resp.text()
    return code


async def clinic_with_queue(
    db: Database, factory: Factory, providers: int = 2
) -> tuple[Clinic, StaffAccount, list[StaffAccount], AppointmentType]:
    clinic = await factory.clinic(timezone="America/New_York")
    admin = await factory.staff(Role.ADMIN, clinic)
    staff = [await factory.staff(Role.PROVIDER, clinic) for _ in range(providers)]
    kind = AppointmentType(clinic_id=clinic.id, name="Urgent care", duration_minutes=15)
    async with db.session() as session:
        session.add(kind)
        for provider in staff:
            session.add(
                ProviderSchedule(
                    clinic_id=clinic.id, provider_id=provider.id, timezone=daytime_zone()
                )
            )
        await session.commit()
    return clinic, admin, staff, kind


def walk_in_body(**changes: Any) -> dict[str, Any]:
    body = {
        "given_name": "Ada",
        "family_name": "Walker",
        "birth_date": "1990-05-17",
        "email": "ada@mail.example",
        "reason": "Sore throat since yesterday",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


async def walk_in(client: Any, code: str, **changes: Any) -> str:
    """Ask for a walk-in visit; the join token of the check-in it leads to."""
    resp = await client.post(f"/api/walk-in/{code}", json=walk_in_body(**changes))
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["join_url"]).rsplit("/", 1)[1]


async def finish_check_in(client: Any, token: str) -> None:
    base = f"/api/join/{token}"
    status = await (await client.get(f"{base}/status")).json()
    assert status["step"] == "consent"
    assert status["provider_name"] == "the next available provider"
    consent = await (await client.get(f"{base}/consent")).json()
    resp = await client.post(
        f"{base}/consent", json={"version": consent["version"], "accepted": True}
    )
    assert resp.status == 200, await resp.text()
    resp = await client.post(f"{base}/device-check", json={"camera": "ok", "microphone": "ok"})
    assert resp.status == 200
    resp = await client.post(f"{base}/waiting")
    assert (await resp.json())["step"] == "waiting"


async def test_admin_sets_up_the_queue_and_the_link_says_open(client, db, factory) -> None:
    clinic, admin, providers, kind = await clinic_with_queue(db, factory)
    headers = await staff_headers(str(client.make_url("")).rstrip("/"), admin)
    code = await open_queue(client, headers, kind, providers)
    shown = await (await client.get("/api/on-demand", headers=headers)).json()
    assert shown["link"].endswith(f"/walk-in/{code}")
    assert set(shown["provider_ids"]) == {str(p.id) for p in providers}
    assert shown["open_now"] is True
    public = await (await client.get(f"/api/walk-in/{code}")).json()
    assert public == {
        "clinic_name": clinic.name,
        "clinic_phone": None,
        "timezone": "America/New_York",
        "open": True,
        "opens_at": None,
        "opens_text": None,
    }
    page = await client.get(f"/walk-in/{code}")
    assert page.status == 200 and clinic.name in await page.text()
    assert (await client.get("/walk-in/no-such-code")).status == 404
    assert (await client.get("/api/walk-in/no-such-code")).status == 404


async def test_closed_hours_say_when_it_opens_in_the_clinic_zone(client, db, factory) -> None:
    _clinic, admin, providers, kind = await clinic_with_queue(db, factory)
    headers = await staff_headers(str(client.make_url("")).rstrip("/"), admin)
    zone = ZoneInfo("America/New_York")
    local = datetime.now(UTC).astimezone(zone)
    # Open only tomorrow (clinic's day) 09:00-10:00: closed now whatever the hour.
    tomorrow = (local + timedelta(days=1)).weekday()
    code = await open_queue(
        client,
        headers,
        kind,
        providers,
        hours=[{"weekday": tomorrow, "start": "09:00", "end": "10:00"}],
    )
    public = await (await client.get(f"/api/walk-in/{code}")).json()
    assert public["open"] is False
    opens = datetime.fromisoformat(public["opens_at"])
    assert opens.astimezone(zone).strftime("%H:%M") == "09:00"
    assert opens.astimezone(zone).date() == (local + timedelta(days=1)).date()
    assert public["opens_text"] == "Opens tomorrow at 09:00 (America/New_York time)."
    resp = await client.post(f"/api/walk-in/{code}", json=walk_in_body())
    assert resp.status == 409
    error = (await resp.json())["error"]
    assert error["code"] == "on_demand_closed" and "Opens tomorrow at 09:00" in error["message"]


def test_hours_across_daylight_saving() -> None:
    # New York, 2026-03-08: clocks go 02:00 -> 03:00. A Sunday opening at 08:00 local.
    hours = [OpenHours(6, time(8), time(12))]
    before = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)  # 00:00 EST
    opens = next_opening(hours, "America/New_York", before)
    assert opens is not None and opens.astimezone(UTC) == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
    assert is_open(hours, "America/New_York", datetime(2026, 3, 8, 12, 30, tzinfo=UTC))
    assert not is_open(hours, "America/New_York", datetime(2026, 3, 8, 16, 0, tzinfo=UTC))


def test_fair_order_booked_at_their_time_walk_ins_by_arrival() -> None:
    now = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    minutes = timedelta(minutes=15)
    booked_early = WaitingPatient(
        uuid.uuid4(), now - timedelta(minutes=5), minutes, now - timedelta(minutes=20)
    )
    walk_in_first = WaitingPatient(
        uuid.uuid4(),
        now - timedelta(minutes=12),
        minutes,
        now - timedelta(minutes=12),
        on_demand=True,
    )
    walk_in_later = WaitingPatient(
        uuid.uuid4(),
        now - timedelta(minutes=2),
        minutes,
        now - timedelta(minutes=2),
        on_demand=True,
    )
    booked_later = WaitingPatient(
        uuid.uuid4(), now + timedelta(minutes=20), minutes, now - timedelta(minutes=1)
    )
    places = queue_places(
        [booked_later, walk_in_later, booked_early, walk_in_first],
        now=now,
        delay=timedelta(minutes=30),
    )
    order = [p.appointment_id for p in places]
    assert order == [
        walk_in_first.appointment_id,  # arrived 09:48, before the 09:55 booking was due
        booked_early.appointment_id,
        walk_in_later.appointment_id,
        booked_later.appointment_id,
    ]
    # The provider's delay moves booked times, not walk-ins who are already here.
    assert places[0].expected_start == now


async def test_walk_in_waits_in_every_queue_provider_takes_it_and_it_is_an_appointment(
    server, http_clients, sockets, db, factory
) -> None:
    _clinic, admin, providers, kind = await clinic_with_queue(db, factory)
    base = str(server.make_url("")).rstrip("/")
    http = http_clients()
    admin_headers = await staff_headers(base, admin)
    code = await open_queue(http, admin_headers, kind, providers)
    patient_http = http_clients()
    token = await walk_in(patient_http, code)
    page = await patient_http.get(f"/j/{token}")
    assert "walk-in queue" in await page.text()
    await finish_check_in(patient_http, token)

    headers = [await staff_headers(base, p) for p in providers]
    queues = [await sockets(base, "/clinic", h) for h in headers]
    waiting = await sockets(base, "/waiting", cookie_header(patient_http))
    for queue in queues:
        row = (
            await queue.wait_for(
                "queue",
                lambda d: any(p["on_demand"] and p["status"] == "waiting" for p in d["patients"]),
            )
        )["patients"][0]
        assert row["on_demand"] is True and row["status"] == "waiting"
        assert row["chart"]["reason"] == "Sore throat since yesterday"
    place = await waiting.wait_for("place")
    assert place["position"] == 1 and place["provider_status"] is None

    taken = await queues[1].call("admit", {"appointment_id": row["appointment_id"]})
    assert "visit_id" in taken
    admitted = await waiting.wait_for("admitted")
    assert admitted["visit_id"] == taken["visit_id"]
    # The other provider can no longer take them; the first queue drops them.
    late = await queues[0].call("admit", {"appointment_id": row["appointment_id"]})
    assert late["error"]["code"] == "not_found", late
    await queues[0].wait_for("queue", lambda d: not d["patients"])

    async with db.session() as session:
        appointment = await session.get(Appointment, uuid.UUID(row["appointment_id"]))
        assert appointment is not None and appointment.on_demand
        assert appointment.provider_id == providers[1].id
        patient = await session.get(Patient, appointment.patient_id)
        assert patient is not None and patient.email == "ada@mail.example"
        events = (
            await session.exec(
                select(AuditEvent.action).where(AuditEvent.patient_id == str(patient.id))
            )
        ).all()
    assert {"on_demand.request", "checkin.consent", "checkin.enter_queue", "visit.admit"} <= set(
        events
    )

    resp = await http.get(f"/fhir/Appointment/{appointment.id}", headers=headers[1])
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    FhirAppointment.model_validate(body)
    assert body["appointmentType"]["coding"][0]["code"] == "WALKIN"
    assert body["status"] == "checked-in"
    assert {p["actor"]["reference"] for p in body["participant"]} == {
        f"Patient/{patient.id}",
        f"Practitioner/{providers[1].id}",
    }


async def test_take_next_serves_walk_ins_by_arrival(
    server, http_clients, sockets, db, factory
) -> None:
    _clinic, admin, providers, kind = await clinic_with_queue(db, factory)
    base = str(server.make_url("")).rstrip("/")
    http = http_clients()
    code = await open_queue(http, await staff_headers(base, admin), kind, providers)
    tokens = []
    for n in range(2):
        patient_http = http_clients()
        token = await walk_in(
            patient_http, code, given_name=f"Walker{n}", email=f"w{n}@mail.example"
        )
        await finish_check_in(patient_http, token)
        tokens.append(token)
    headers = await staff_headers(base, providers[0])
    first = await http.post("/api/on-demand/take", headers=headers)
    assert first.status == 200, await first.text()
    second = await http.post("/api/on-demand/take", headers=await staff_headers(base, providers[1]))
    assert second.status == 200
    async with db.session() as session:
        a = await session.get(Appointment, uuid.UUID((await first.json())["appointment_id"]))
        b = await session.get(Appointment, uuid.UUID((await second.json())["appointment_id"]))
        names = [(await session.get(Patient, x.patient_id)).given_name for x in (a, b)]  # type: ignore[union-attr]
    assert names == ["Walker0", "Walker1"]
    empty = await http.post("/api/on-demand/take", headers=headers)
    assert empty.status == 404


async def test_records_are_matched_flagged_and_merged(client, db, factory) -> None:
    clinic, admin, providers, kind = await clinic_with_queue(db, factory, providers=1)
    scheduler = await factory.staff(Role.SCHEDULER, clinic)
    base = str(client.make_url("")).rstrip("/")
    code = await open_queue(client, await staff_headers(base, admin), kind, providers)
    known = await factory.patient(
        clinic,
        given_name="Ada",
        family_name="Walker",
        email="ada@mail.example",
        phone=None,
        birth_date=datetime(1990, 5, 17).date(),
    )
    await walk_in(client, code, given_name="ADA ", family_name="walker")
    await walk_in(client, code, email=None, phone="+1 555 0199")  # same person? another contact
    async with db.session() as session:
        rows = (await session.exec(select(Patient).where(Patient.clinic_id == clinic.id))).all()
    assert len(rows) == 2  # no duplicate for the same name, birth date and contact
    flagged = next(p for p in rows if p.id != known.id)
    assert flagged.needs_review and flagged.phone == "+1 555 0199"

    headers = await staff_headers(base, scheduler)
    reviews = await (await client.get("/api/patient-reviews", headers=headers)).json()
    assert [r["patient"]["id"] for r in reviews] == [str(flagged.id)]
    assert [c["id"] for c in reviews[0]["candidates"]] == [str(known.id)]
    resp = await client.post(
        f"/api/patients/{flagged.id}/merge", json={"into": str(known.id)}, headers=headers
    )
    assert resp.status == 200, await resp.text()
    async with db.session() as session:
        kept = await session.get(Patient, known.id)
        gone = await session.get(Patient, flagged.id)
        moved = (
            await session.exec(select(Appointment).where(Appointment.patient_id == known.id))
        ).all()
        merges = (
            await session.exec(select(AuditEvent).where(AuditEvent.action == "patient.merge"))
        ).all()
    assert kept is not None and kept.phone == "+1 555 0199" and not kept.needs_review
    assert gone is not None and gone.merged_into == known.id
    assert len(moved) == 2
    assert {e.patient_id for e in merges} == {str(known.id), str(flagged.id)}
    assert await (await client.get("/api/patient-reviews", headers=headers)).json() == []
    again = await client.post(
        f"/api/patients/{flagged.id}/merge", json={"into": str(known.id)}, headers=headers
    )
    assert again.status == 409


async def test_abuse_limits_per_address_and_per_contact(
    settings_factory, aiohttp_client, db, factory
) -> None:
    from app.main import create_app

    client = await aiohttp_client(create_app(settings_factory(on_demand_per_address_hour=3)))
    _clinic, admin, providers, kind = await clinic_with_queue(db, factory, providers=1)
    code = await open_queue(
        client, await staff_headers(str(client.make_url("")).rstrip("/"), admin), kind, providers
    )
    await walk_in(client, code)
    same_contact = await client.post(f"/api/walk-in/{code}", json=walk_in_body())
    assert same_contact.status == 429
    assert (await same_contact.json())["error"]["code"] == "too_many_open_requests"
    await walk_in(client, code, email="other@mail.example")
    too_many = await client.post(
        f"/api/walk-in/{code}", json=walk_in_body(email="third@mail.example")
    )
    assert too_many.status == 429 and "Retry-After" in too_many.headers
    bad = await client.post(f"/api/walk-in/{code}", json=walk_in_body(email=None))
    assert bad.status in (400, 429)


async def test_bad_input_is_a_clear_400(client, db, factory) -> None:
    _clinic, admin, providers, kind = await clinic_with_queue(db, factory, providers=1)
    headers = await staff_headers(str(client.make_url("")).rstrip("/"), admin)
    code = await open_queue(client, headers, kind, providers)
    for body in (
        walk_in_body(email=None),
        walk_in_body(birth_date="2999-01-01"),
        walk_in_body(reason="   "),
        walk_in_body(phone="call me"),
    ):
        resp = await client.post(f"/api/walk-in/{code}", json=body)
        assert resp.status == 400, body
        assert (await resp.json())["error"]["code"] == "invalid_input"
    wrong = {
        "code": "Bad Code",
        "enabled": True,
        "hours": [],
        "appointment_type_id": str(kind.id),
        "provider_ids": [],
    }
    resp = await client.put("/api/on-demand", json=wrong, headers=headers)
    assert resp.status == 400
    wrong |= {"code": "fine-code", "hours": [{"weekday": 1, "start": "10:00", "end": "09:00"}]}
    assert (await client.put("/api/on-demand", json=wrong, headers=headers)).status == 400
