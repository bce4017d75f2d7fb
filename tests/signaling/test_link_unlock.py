"""A join link locked by wrong dates of birth: the page says whom to call, staff unlock it, and a
re-issued link (a reschedule) works."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from app.core.db import Database
from app.core.models import AuditEvent, Clinic, Role
from scheduling.links import join_token
from scheduling.models import Appointment, AvailabilityRule, ProviderSchedule
from signaling.models import CheckIn
from tests.conftest import Factory, StaffAccount, bearer_login
from tests.signaling.conftest import BIRTH_DATE, Visitable, WaitingFactory

PHONE = "+1 212 555 0177"
WRONG = {"birth_date": (BIRTH_DATE + timedelta(days=1)).isoformat()}
RIGHT = {"birth_date": BIRTH_DATE.isoformat()}


@pytest.fixture
def settings(settings_factory):
    # A link opens three hours ahead: a visit moved to later today can be joined at once.
    return settings_factory(background_tasks=False, join_opens_minutes=180)


async def _with_phone(db: Database, clinic: Clinic) -> None:
    async with db.session() as session:
        row = await session.get(Clinic, clinic.id)
        assert row is not None
        row.phone = PHONE
        session.add(row)
        await session.commit()


async def _lock_by_wrong_dates(client: TestClient, token: str) -> dict[str, object]:
    """Type wrong dates of birth until the link locks; the 423's error."""
    for _ in range(5):
        resp = await client.post(f"/api/join/{token}/identity", json=WRONG)
        if resp.status == 423:
            error: dict[str, object] = (await resp.json())["error"]
            return error
        assert resp.status == 400, await resp.text()
    raise AssertionError("the link did not lock")


async def _locked(db: Database, appointment: Appointment) -> None:
    """The check-in as five wrong dates of birth leave it."""
    async with db.session() as session:
        session.add(
            CheckIn(
                appointment_id=appointment.id,
                clinic_id=appointment.clinic_id,
                provider_id=appointment.provider_id,
                patient_id=appointment.patient_id,
                identity_failures=5,
                failures_version=appointment.version,
                link_locked_at=datetime.now(UTC),
            )
        )
        await session.commit()


async def _open_today(db: Database, v: Visitable) -> None:
    """The provider offers the rest of today (their zone), bookable at 5 minutes' notice."""
    async with db.session() as session:
        schedule = (
            await session.exec(
                select(ProviderSchedule).where(ProviderSchedule.provider_id == v.provider.id)
            )
        ).one()
        schedule.min_notice_minutes = 5
        today = datetime.now(ZoneInfo(schedule.timezone)).date()
        session.add(schedule)
        session.add(
            AvailabilityRule(
                schedule_id=schedule.id,
                weekday=today.weekday(),
                start_time=time(0),
                end_time=time(23, 40),
            )
        )
        await session.commit()


async def test_the_locked_page_gives_the_clinic_phone_and_no_open_check_in(
    client: TestClient, db: Database, waiting: WaitingFactory
):
    v = await waiting.visitable()
    await _with_phone(db, v.clinic)
    error = await _lock_by_wrong_dates(client, v.token)
    assert PHONE in str(error["message"])
    assert error["detail"] == {"clinic_name": v.clinic.name, "clinic_phone": PHONE}

    page = await client.get(f"/join/{v.token}")
    assert page.status == 423
    html = await page.text()
    assert "Check-in is open" not in html
    assert "locked after too many wrong dates of birth" in html
    assert f'href="tel:+12125550177">{PHONE}</a>' in html
    assert "/static/js/join.js" not in html  # no check-in form to fill in


async def test_an_open_link_already_holds_the_locked_help_with_the_phone(
    client: TestClient, db: Database, waiting: WaitingFactory
):
    """The page shows it when a wrong date locks the link while the patient is on it."""
    v = await waiting.visitable()
    await _with_phone(db, v.clinic)
    html = await (await client.get(f"/join/{v.token}")).text()
    assert 'id="link-locked" role="alert" hidden' in html
    assert PHONE in html


async def test_a_rescheduled_link_opens_after_the_old_one_locked(
    client: TestClient, db: Database, waiting: WaitingFactory
):
    v = await waiting.visitable()
    await _open_today(db, v)
    await _lock_by_wrong_dates(client, v.token)

    headers = await bearer_login(client, v.scheduler)
    today = datetime.now(UTC).date()
    found = await client.get(
        f"/api/providers/{v.provider.id}/slots",
        params={
            "appointment_type_id": str(v.appointment.appointment_type_id),
            "from": str(today - timedelta(days=1)),
            "to": str(today + timedelta(days=1)),
        },
        headers=headers,
    )
    assert found.status == 200, await found.text()
    later = [
        s["start"]
        for s in (await found.json())["slots"]
        if datetime.fromisoformat(s["start"]) < datetime.now(UTC) + timedelta(hours=2)
    ]
    assert later, "no slot in the next two hours"
    moved = await client.post(
        f"/api/appointments/{v.appointment.id}/reschedule",
        json={"start": later[0]},
        headers=headers,
    )
    assert moved.status == 200, await moved.text()
    new_token = (await moved.json())["join_url"].rsplit("/", 1)[1]  # the short link's code

    page = await client.get(f"/join/{new_token}")
    assert page.status == 200
    assert "Check-in is open" in await page.text()
    resp = await client.post(f"/api/join/{new_token}/identity", json=RIGHT)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["step"] == "consent"
    old = await client.post(f"/api/join/{v.token}/identity", json=RIGHT)
    assert old.status == 410


async def test_a_fresh_link_gets_the_full_count_of_tries(
    client: TestClient, db: Database, waiting: WaitingFactory
):
    """Tries typed into the old link do not count against the re-issued one."""
    v = await waiting.visitable()
    await _locked(db, v.appointment)
    async with db.session() as session:
        appointment = await session.get(Appointment, v.appointment.id)
        assert appointment is not None
        appointment.version += 1  # what a reschedule does to the old link
        session.add(appointment)
        await session.commit()
    new_token = join_token(waiting.settings, appointment)
    resp = await client.post(f"/api/join/{new_token}/identity", json=WRONG)
    assert resp.status == 400
    assert (await resp.json())["error"]["message"].endswith("4 attempt(s) left.")


async def test_staff_unlock_lets_the_same_link_work_and_is_audited(
    client: TestClient, db: Database, waiting: WaitingFactory
):
    v = await waiting.visitable()
    await _lock_by_wrong_dates(client, v.token)
    headers = await bearer_login(client, v.provider)
    url = f"/api/appointments/{v.appointment.id}/unlock-checkin"
    resp = await client.post(url, headers=headers)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["link_locked"] is False
    assert body["patient_name"] == f"{v.patient.given_name} {v.patient.family_name}"
    again = await client.post(url, headers=headers)
    assert again.status == 409

    page = await client.get(f"/join/{v.token}")
    assert page.status == 200 and "Check-in is open" in await page.text()
    # A fresh count: one more wrong date does not lock it again.
    wrong = await client.post(f"/api/join/{v.token}/identity", json=WRONG)
    assert (await wrong.json())["error"]["message"].endswith("4 attempt(s) left.")
    right = await client.post(f"/api/join/{v.token}/identity", json=RIGHT)
    assert right.status == 200, await right.text()

    async with db.session() as session:
        events = (
            await session.exec(
                select(AuditEvent)
                .where(AuditEvent.action == "checkin.unlock")
                .order_by(col(AuditEvent.id))
            )
        ).all()
    assert [(e.outcome, e.actor_id) for e in events] == [
        ("success", str(v.provider.id)),
        ("failure", str(v.provider.id)),
    ]
    assert events[0].patient_id == str(v.patient.id)
    assert events[0].object_id == str(v.appointment.id)


# Who may unlock: staff of the appointment's clinic, a provider only their own appointments;
# another clinic's appointment looks like one that does not exist.
CALLERS = ["anonymous", Role.ADMIN, Role.SCHEDULER, "own provider", "other provider"]
OWN_CLINIC = {
    "anonymous": 401,
    Role.ADMIN: 200,
    Role.SCHEDULER: 200,
    "own provider": 200,
    "other provider": 403,
}
OTHER_CLINIC = {
    "anonymous": 401,
    Role.ADMIN: 404,
    Role.SCHEDULER: 404,
    "own provider": 404,
    "other provider": 404,
}


async def _caller(factory: Factory, v: Visitable, who: object) -> StaffAccount | None:
    if who == "anonymous":
        return None
    if who == "own provider":
        return v.provider
    if who == "other provider":
        return await factory.staff(Role.PROVIDER, v.clinic)
    assert isinstance(who, Role)
    return await factory.staff(who, v.clinic)


@pytest.mark.parametrize("clinic", ["own", "other"])
@pytest.mark.parametrize("who", CALLERS)
async def test_who_may_unlock(
    client: TestClient,
    db: Database,
    factory: Factory,
    waiting: WaitingFactory,
    who: object,
    clinic: str,
):
    mine = await waiting.visitable()
    target = mine if clinic == "own" else await waiting.visitable()
    await _locked(db, target.appointment)
    account = await _caller(factory, mine, who)
    headers = await bearer_login(client, account) if account else {}
    resp = await client.post(
        f"/api/appointments/{target.appointment.id}/unlock-checkin", headers=headers
    )
    expected = (OWN_CLINIC if clinic == "own" else OTHER_CLINIC)[who]  # type: ignore[index]
    assert resp.status == expected, await resp.text()
    if expected != 200:
        assert target.patient.family_name not in await resp.text()
        still = await client.post(f"/api/join/{target.token}/identity", json=RIGHT)
        assert still.status == 423
    if account is not None and expected in (403, 404):
        async with db.session() as session:
            outcomes = (
                await session.exec(
                    select(AuditEvent.outcome).where(
                        AuditEvent.action == "checkin.unlock",
                        AuditEvent.actor_id == str(account.id),
                    )
                )
            ).all()
        assert outcomes == ["denied"]


async def test_a_malformed_appointment_id_is_a_404(client: TestClient, factory: Factory):
    admin = await factory.staff(Role.ADMIN)
    headers = await bearer_login(client, admin)
    for path in ("not-a-uuid", str(uuid.uuid4())):
        resp = await client.post(f"/api/appointments/{path}/unlock-checkin", headers=headers)
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "not_found"
