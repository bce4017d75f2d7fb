"""The clinic's working day in the queue: chart facts for those who read records, the patient's
answers and reason, the provider's status and delay in the patient's words, the clinic's phone."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import select

from app.core.audit import AuditEvent
from app.core.db import Database
from app.core.models import Role
from app.records.access import READERS
from signaling.models import VisitParticipant, WaitingMessage
from signaling.queue.chart import RECORD_READERS, age_on
from signaling.queue.places import WaitingPatient, queue_places
from tests.signaling.conftest import (
    BIRTH_DATE,
    WaitingFactory,
    admit_patient,
    check_in,
    cookie_header,
    daytime_zone,
    staff_headers,
)
from tests.test_input_rules import BROKEN_TEXT


def row_of(queue: dict[str, Any], appointment_id: uuid.UUID) -> dict[str, Any]:
    found: dict[str, Any] = next(
        p for p in queue["patients"] if p["appointment_id"] == str(appointment_id)
    )
    return found


async def sign_a_note(http: Any, headers: dict[str, str], patient_id: uuid.UUID) -> str:
    resp = await http.post(
        f"/api/patients/{patient_id}/notes",
        json={"sections": {"plan": "Rest."}},
        headers=headers,
    )
    assert resp.status == 201, await resp.text()
    note = await resp.json()
    resp = await http.post(
        f"/api/notes/{note['id']}/sign", json={"version": note["version"]}, headers=headers
    )
    assert resp.status == 200, await resp.text()
    signed: str = (await resp.json())["signed_at"]
    return signed


def test_the_queue_knows_the_record_readers():
    assert {role.value for role in READERS} == RECORD_READERS


def test_age_counts_full_years():
    assert age_on(date(1979, 4, 2), date(2026, 4, 1)) == 46
    assert age_on(date(1979, 4, 2), date(2026, 4, 2)) == 47


async def test_chart_facts_reach_providers_and_admins_not_schedulers(
    server, http_clients, waiting: WaitingFactory, sockets, db: Database, factory
):
    v = await waiting.visitable()
    admin = await factory.staff(Role.ADMIN, v.clinic)
    url = str(server.make_url("/"))
    base = url.rstrip("/")
    provider_headers = await staff_headers(base, v.provider)
    staff_http = http_clients()
    signed_at = await sign_a_note(staff_http, provider_headers, v.patient.id)
    patient_http = http_clients()
    await check_in(patient_http, v.token)
    resp = await patient_http.post(
        f"/api/join/{v.token}/reason", json={"text": "  Sore throat for a week "}
    )
    assert resp.status == 201, await resp.text()

    provider = await sockets(url, "/clinic", provider_headers)
    admin_socket = await sockets(url, "/clinic", await staff_headers(base, admin))
    scheduler = await sockets(url, "/clinic", await staff_headers(base, v.scheduler))
    today = datetime.now(ZoneInfo(daytime_zone())).date()
    for listener in (provider, admin_socket):
        queue = await listener.wait_for("queue", lambda q: q["provider_id"] == str(v.provider.id))
        chart = row_of(queue, v.appointment.id)["chart"]
        assert chart["record_url"] == f"/records/patients/{v.patient.id}"
        assert chart["age"] == age_on(BIRTH_DATE, today)
        assert chart["reason"] == "Sore throat for a week"
        assert datetime.fromisoformat(chart["last_signed_note_at"]) == datetime.fromisoformat(
            signed_at
        )
    queue = await scheduler.wait_for("queue", lambda q: q["provider_id"] == str(v.provider.id))
    seen = row_of(queue, v.appointment.id)
    assert "chart" not in seen and "Sore throat" not in str(queue)
    assert seen["waiting_since"] is not None  # waiting times tick from the server's arrival time

    # A change pushed later keeps the same split: a reply reaches readers only.
    before = len(scheduler.events)
    resp = await patient_http.post(f"/api/join/{v.token}/reply", json={"text": "On my way"})
    assert resp.status == 201
    pushed = await provider.wait_for(
        "queue", lambda q: "On my way" in str(q) and q["provider_id"] == str(v.provider.id)
    )
    assert row_of(pushed, v.appointment.id)["chart"]["messages"][-1] == {
        "sender": "patient",
        "text": "On my way",
        "sent_at": (await resp.json())["sent_at"],
    }
    await admin_socket.wait_for("queue", lambda q: "On my way" in str(q))
    await scheduler.wait_for("queue", lambda q: len(scheduler.events) > before)
    assert all("On my way" not in str(data) for _, data in scheduler.events)

    async with db.session() as session:
        reads = (
            await session.exec(
                select(AuditEvent).where(
                    AuditEvent.action == "queue.read", AuditEvent.actor_id == str(admin.id)
                )
            )
        ).all()
    assert [e.detail for e in reads] == ["with chart facts"]


async def test_a_waiting_patient_answers_briefly_and_not_too_often(
    server, http_clients, waiting: WaitingFactory, db: Database
):
    v = await waiting.visitable()
    patient_http = http_clients()
    base = f"/api/join/{v.token}"
    # Not yet in the waiting room: nothing to answer.
    resp = await patient_http.post(f"{base}/identity", json={"birth_date": "1979-04-02"})
    assert resp.status == 200
    resp = await patient_http.post(f"{base}/reply", json={"text": "Hello"})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "conflict"
    await check_in(patient_http, v.token)

    for bad in ("", "   ", "x" * 201, *BROKEN_TEXT.values()):
        resp = await patient_http.post(f"{base}/reply", json={"text": bad})
        assert resp.status == 400, bad
        assert "text" in (await resp.json())["error"]["fields"]
    resp = await patient_http.post(f"{base}/reply", json={"text": "x" * 200})
    assert resp.status == 201
    for text in ("OK", "Thanks"):
        assert (await patient_http.post(f"{base}/reply", json={"text": text})).status == 201
    resp = await patient_http.post(f"{base}/reply", json={"text": "One more"})
    assert resp.status == 429
    assert (await resp.json())["error"]["code"] == "too_many_requests"

    # Another person's browser (no patient session for this link) cannot write here.
    stranger = http_clients()
    resp = await stranger.post(f"{base}/reply", json={"text": "Hi"})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "step_missing"

    status = await (await patient_http.get(f"{base}/status")).json()
    assert [m["from"] for m in status["messages"]] == ["You", "You", "You"]
    async with db.session() as session:
        stored = (await session.exec(select(WaitingMessage))).all()
        audited = (
            await session.exec(select(AuditEvent).where(AuditEvent.action == "waiting_room.reply"))
        ).all()
    assert {m.sender for m in stored} == {"patient"} and len(stored) == 3
    assert all(m.author_id is None for m in stored)
    assert len(audited) == 3 and {e.patient_id for e in audited} == {str(v.patient.id)}


async def test_the_waiting_patient_reads_the_providers_state_and_delay(
    server, http_clients, waiting: WaitingFactory, sockets
):
    clinic, provider, scheduler, kind = await waiting.clinic_day()
    _, first, first_token = await waiting.appointment(clinic, provider, kind)
    _, second, second_token = await waiting.appointment(
        clinic, provider, kind, starts_in=timedelta(minutes=25), given="Ole"
    )
    url = str(server.make_url("/"))
    second_http = http_clients()
    await check_in(second_http, second_token)
    second_socket = await sockets(url, "/waiting", cookie_header(second_http))
    place = await second_socket.wait_for("place")
    assert place["provider_status"] is None

    # The provider admits the first patient: the second reads that they are in another visit,
    # and their expected start follows the visit in progress.
    from tests.signaling.conftest import Visitable

    v = Visitable(clinic, provider, scheduler, None, first, first_token)  # type: ignore[arg-type]
    await admit_patient(server, http_clients(), v, sockets)
    place = await second_socket.wait_for(
        "place", lambda p: p["provider_status"] and "another visit" in p["provider_status"]
    )
    assert place["provider_status"] == f"{provider.user.full_name} is finishing another visit."
    assert datetime.fromisoformat(place["expected_start"]) >= first.end_at

    # Running late: the provider says so in the queue; the patient reads it and waits longer.
    clinic_socket = await sockets(url, "/clinic", await staff_headers(url.rstrip("/"), provider))
    assert await clinic_socket.call("delay", {"minutes": 30}) == {"delay_minutes": 30}
    place = await second_socket.wait_for("place", lambda p: "late" in (p["provider_status"] or ""))
    assert (
        f"{provider.user.full_name} is running about 30 minutes late." in place["provider_status"]
    )
    assert datetime.fromisoformat(place["expected_start"]) >= second.start_at + timedelta(
        minutes=30
    )
    queue = await clinic_socket.wait_for("queue", lambda q: q["delay_minutes"] == 30)
    assert queue["in_visit"] is True

    # Only the provider sets their delay, within reason.
    for bad in ({"minutes": -5}, {"minutes": 600}, {"minutes": "ten"}, {}):
        ack = await clinic_socket.call("delay", bad)
        assert ack["error"]["code"] == "invalid_input", bad
    watcher = await sockets(url, "/clinic", await staff_headers(url.rstrip("/"), scheduler))
    ack = await watcher.call("delay", {"minutes": 10})
    assert ack["error"]["code"] == "forbidden"


def test_a_delay_pushes_every_expected_start_after_the_booked_time():
    noon = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    minute = timedelta(minutes=1)
    first = WaitingPatient(uuid.uuid4(), noon, 20 * minute, noon - 5 * minute)
    second = WaitingPatient(uuid.uuid4(), noon + 20 * minute, 20 * minute, noon - 2 * minute)
    places = queue_places([first, second], now=noon, delay=10 * minute)
    assert [p.expected_start for p in places] == [noon + 10 * minute, noon + 30 * minute]
    # A visit in progress that runs past the delay still comes first.
    places = queue_places(
        [first, second], now=noon, provider_free_at=noon + 15 * minute, delay=10 * minute
    )
    assert [p.expected_start for p in places] == [noon + 15 * minute, noon + 35 * minute]


async def test_the_ended_visit_lists_each_person_once_after_a_reload(
    server, http_clients, waiting: WaitingFactory, sockets, db: Database
):
    v = await waiting.visitable()
    patient_http = http_clients()
    visit_id, provider_headers = await admit_patient(server, patient_http, v, sockets)
    name = f"{v.patient.given_name} {v.patient.family_name}"
    start = datetime.now(UTC)
    # The patient's page was reloaded once: two stretches of presence, then the provider's.
    async with db.session() as session:
        for offset, left in ((0, 60), (65, 300)):
            session.add(
                VisitParticipant(
                    visit_id=uuid.UUID(visit_id),
                    role="patient",
                    person_id=v.patient.id,
                    name=name,
                    joined_at=start + timedelta(seconds=offset),
                    left_at=start + timedelta(seconds=left),
                )
            )
        session.add(
            VisitParticipant(
                visit_id=uuid.UUID(visit_id),
                role="provider",
                person_id=v.provider.id,
                name=v.provider.user.full_name,
                joined_at=start,
                left_at=start + timedelta(seconds=300),
            )
        )
        await session.commit()
    url = str(server.make_url("/"))
    provider = await sockets(url, "/visit", provider_headers, {"visit_id": visit_id})
    assert (await provider.call("end", {}))["ok"] is True

    staff_http = http_clients()
    summary = await (
        await staff_http.get(f"/api/visits/{visit_id}/attendance", headers=provider_headers)
    ).json()
    patients = [p for p in summary["participants"] if p["role"] == "patient"]
    assert len(patients) == 1
    assert patients[0]["stretches"] == 2 and patients[0]["seconds"] == 60 + 235
    page = await (await staff_http.get(f"/visit/{visit_id}", headers=provider_headers)).text()
    attendance = page[page.index('id="attendance"') :]
    assert attendance.count(f"<td>{name}") == 1
    assert "joined 2 times" in attendance
    # The ended page also leads the provider to the chart.
    assert f'href="/records/patients/{v.patient.id}"' in page
    assert "/records/patients/" not in await (await patient_http.get(f"/visit/{visit_id}")).text()
