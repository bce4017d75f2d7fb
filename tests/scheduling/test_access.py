"""Who may do what: roles, own clinic only, providers see their own calendar; audited reads;
the join page explains dead links and reveals no patient data; FHIR resources validate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.schedule import Schedule
from sqlmodel import select

from app.core.models import AuditEvent, Role
from app.web.access_log import loggable_path
from scheduling.links import join_url
from scheduling.models import Appointment
from tests.conftest import bearer_login
from tests.scheduling.conftest import at, book_body, next_weekday


async def test_role_and_clinic_matrix(client, sched, factory):
    cal = await sched.calendar()
    other = await sched.calendar()
    second_provider = await factory.staff(Role.PROVIDER, cal.clinic)
    monday = next_weekday(0)
    scheduler = await bearer_login(client, cal.scheduler)
    admin = await bearer_login(client, cal.admin)
    provider = await bearer_login(client, cal.provider)
    provider2 = await bearer_login(client, second_provider)
    foreign = await bearer_login(client, other.scheduler)
    booked = await (
        await client.post(
            "/api/appointments", json=book_body(cal, at(monday, 9)), headers=scheduler
        )
    ).json()
    appt = f"/api/appointments/{booked['id']}"
    slots = (
        f"/api/providers/{cal.provider.id}/slots"
        f"?appointment_type_id={cal.kind.id}&from={monday}&to={monday}"
    )

    # Admins book too; providers do not book or manage.
    assert (
        await client.post("/api/appointments", json=book_body(cal, at(monday, 10)), headers=admin)
    ).status == 201
    assert (
        await client.post(
            "/api/appointments", json=book_body(cal, at(monday, 11)), headers=provider
        )
    ).status == 403
    assert (
        await client.post(f"{appt}/cancel", json={"reason": "x"}, headers=provider)
    ).status == 403
    assert (await client.get(f"/api/patients/{cal.patient.id}", headers=provider)).status == 403
    assert (
        await client.put(
            f"/api/providers/{cal.provider.id}/schedule", json={"timezone": "UTC"}, headers=provider
        )
    ).status == 403

    # A provider sees their own calendar and appointments, not a colleague's.
    assert (await client.get(slots, headers=provider)).status == 200
    assert (await client.get(appt, headers=provider)).status == 200
    assert (await client.get(slots, headers=provider2)).status == 403
    assert (await client.get(appt, headers=provider2)).status == 403
    mine = await client.get(f"/api/appointments?from={monday}&to={monday}", headers=provider)
    assert [a["id"] for a in await mine.json()][:1] == [booked["id"]]
    theirs = await client.get(
        f"/api/appointments?from={monday}&to={monday}&provider_id={cal.provider.id}",
        headers=provider2,
    )
    assert theirs.status == 403
    empty = await client.get(f"/api/appointments?from={monday}&to={monday}", headers=provider2)
    assert await empty.json() == []

    # Nothing crosses clinics: the other clinic's scheduler finds nothing of this one.
    for url in (
        appt,
        f"/api/patients/{cal.patient.id}",
        slots,
        f"/api/providers/{cal.provider.id}/schedule",
    ):
        assert (await client.get(url, headers=foreign)).status == 404, url
    assert (
        await client.post(f"{appt}/cancel", json={"reason": "x"}, headers=foreign)
    ).status == 404
    body = book_body(cal, at(monday, 11)) | {"provider_id": str(other.provider.id)}
    resp = await client.post("/api/appointments", json=body, headers=foreign)
    assert resp.status == 404 and "patient_id" in (await resp.json())["error"]["fields"]
    found = await client.get("/api/patients?q=maria", headers=foreign)
    assert [p["id"] for p in await found.json()] == [str(other.patient.id)]
    lst = await client.get(f"/api/appointments?from={monday}&to={monday}", headers=foreign)
    assert await lst.json() == []

    # Signed out: 401.
    assert (await client.get(slots)).status == 401
    assert (
        await client.post("/api/appointments", json=book_body(cal, at(monday, 11)))
    ).status == 401


async def test_patient_create_search_and_every_read_audited(client, sched, db):
    cal = await sched.calendar()
    headers = await bearer_login(client, cal.scheduler)
    body = {
        "given_name": "Ana",
        "family_name": "Silva",
        "birth_date": "1990-02-03",
        "email": "ana@mail.example",
        "timezone": "America/Sao_Paulo",
    }
    resp = await client.post("/api/patients", json=body, headers=headers)
    assert resp.status == 201
    patient = await resp.json()
    for bad, field in (
        (body | {"birth_date": "2999-01-01"}, "birth_date"),
        (body | {"timezone": "Atlantis/Capital"}, "timezone"),
        (body | {"email": "not-an-email"}, "email"),
        ({k: v for k, v in body.items() if k != "family_name"}, "family_name"),
    ):
        bad_resp = await client.post("/api/patients", json=bad, headers=headers)
        assert bad_resp.status == 400 and field in (await bad_resp.json())["error"]["fields"]
    by_name = await (await client.get("/api/patients?q=sil", headers=headers)).json()
    assert [p["id"] for p in by_name] == [patient["id"]]
    by_dob = await (await client.get("/api/patients?birth_date=1990-02-03", headers=headers)).json()
    assert [p["id"] for p in by_dob] == [patient["id"]]
    assert await (await client.get("/api/patients?q=50%25", headers=headers)).json() == []
    bad_q = await client.get("/api/patients?birth_date=yesterday", headers=headers)
    assert bad_q.status == 400 and "birth_date" in (await bad_q.json())["error"]["fields"]
    assert (await client.get(f"/api/patients/{patient['id']}", headers=headers)).status == 200
    async with db.session() as session:
        events = (
            await session.exec(select(AuditEvent).where(AuditEvent.patient_id == patient["id"]))
        ).all()
    assert sorted(e.action for e in events) == [
        "patient.create",
        "patient.read",
        "patient.search",
        "patient.search",
    ]
    assert all(e.actor_id == str(cal.scheduler.id) for e in events)


async def _insert(db, cal, start):
    appointment = Appointment(
        clinic_id=cal.clinic.id,
        provider_id=cal.provider.id,
        patient_id=cal.patient.id,
        appointment_type_id=cal.kind.id,
        start_at=start,
        end_at=start + timedelta(minutes=30),
        busy_until=start + timedelta(minutes=30),
    )
    async with db.session() as session:
        session.add(appointment)
        await session.commit()
    return appointment


async def test_join_page_states_in_plain_words(client, sched, db, settings):
    cal = await sched.calendar()
    headers = await bearer_login(client, cal.scheduler)
    client.session.cookie_jar.clear()
    monday = next_weekday(0)
    booked = await (
        await client.post("/api/appointments", json=book_body(cal, at(monday, 9)), headers=headers)
    ).json()
    path = urlsplit(booked["join_url"]).path  # the short link, /j/<code>
    assert path.startswith("/j/")

    early = await client.get(path)
    text = await early.text()
    assert early.status == 200 and "too early" in text and "Check-in opens at" in text
    assert cal.provider.user.full_name in text
    assert cal.patient.given_name not in text and cal.patient.family_name not in text
    assert early.headers["Referrer-Policy"] == "no-referrer"

    await client.post(
        f"/api/appointments/{booked['id']}/reschedule",
        json={"start": at(monday, 10).isoformat()},
        headers=headers,
    )
    moved = await client.get(path)
    assert moved.status == 410 and "moved to a new time" in await moved.text()

    second = await (
        await client.post("/api/appointments", json=book_body(cal, at(monday, 11)), headers=headers)
    ).json()
    await client.post(
        f"/api/appointments/{second['id']}/cancel", json={"reason": "x"}, headers=headers
    )
    cancelled = await client.get(urlsplit(second["join_url"]).path)
    assert cancelled.status == 410 and "was cancelled" in await cancelled.text()

    assert loggable_path(path) == "/j/***"  # links never reach the access log
    garbage = await client.get("/join/not-a-token")
    assert garbage.status == 404 and "not valid" in await garbage.text()
    tampered = await client.get(f"{path[:-3]}abc")
    assert tampered.status == 404

    now = datetime.now(UTC)
    soon = await _insert(db, cal, now + timedelta(minutes=10))
    open_page = await client.get("/join/" + join_url(settings, soon).split("/join/")[1])
    assert open_page.status == 200 and "Check-in is open" in await open_page.text()
    old = await _insert(db, cal, now - timedelta(hours=3))
    expired = await client.get("/join/" + join_url(settings, old).split("/join/")[1])
    body = await expired.text()
    assert expired.status == 410 and "expired" in body and cal.patient.family_name not in body


async def test_fhir_schedule_slots_and_appointment_validate(client, sched, db):
    cal = await sched.calendar()
    headers = await bearer_login(client, cal.scheduler)
    monday = next_weekday(0)
    booked = await (
        await client.post("/api/appointments", json=book_body(cal, at(monday, 9)), headers=headers)
    ).json()

    resp = await client.get(f"/fhir/Schedule/{cal.schedule.id}", headers=headers)
    assert resp.status == 200 and resp.content_type == "application/fhir+json"
    schedule = Schedule.model_validate(await resp.json())
    assert schedule.actor[0].reference == f"Practitioner/{cal.provider.id}"

    resp = await client.get(
        f"/fhir/Slot?schedule={cal.schedule.id}&service-type={cal.kind.id}&start={monday}&end={monday}",
        headers=headers,
    )
    bundle_json = await resp.json()
    bundle = Bundle.model_validate(bundle_json)
    assert bundle.type == "searchset" and bundle.total == 5
    assert {e["resource"]["status"] for e in bundle_json["entry"]} == {"free"}
    assert {e["resource"]["resourceType"] for e in bundle_json["entry"]} == {"Slot"}

    resp = await client.get(f"/fhir/Appointment/{booked['id']}", headers=headers)
    data = await resp.json()
    appointment = FhirAppointment.model_validate(data)
    assert appointment.status == "booked" and len(appointment.participant) == 2
    assert data["participant"][0]["actor"]["reference"] == f"Patient/{cal.patient.id}"
    async with db.session() as session:
        events = (
            await session.exec(
                select(AuditEvent).where(AuditEvent.action == "fhir.appointment.read")
            )
        ).all()
    assert [e.patient_id for e in events] == [str(cal.patient.id)]

    bad = await client.get(
        f"/fhir/Slot?schedule={cal.schedule.id}&service-type={cal.kind.id}&start=2027-02-02&end=2027-01-01",
        headers=headers,
    )
    assert bad.status == 400 and "end" in (await bad.json())["error"]["fields"]
    other = await sched.calendar()
    foreign = await bearer_login(client, other.scheduler)
    assert (await client.get(f"/fhir/Appointment/{booked['id']}", headers=foreign)).status == 404
    assert (await client.get(f"/fhir/Schedule/{cal.schedule.id}", headers=foreign)).status == 404
