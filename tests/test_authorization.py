"""Who may do what: every role against every route, own clinic against another clinic."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import select

from app.core.models import AuditEvent, Role
from tests.conftest import Factory, bearer_login

ROLES = ["anonymous", Role.ADMIN, Role.SCHEDULER, Role.PROVIDER]

# (method, path template, {role: expected status}); {own} is a user of the caller's clinic,
# {other} a user of another clinic, which must look exactly like a user that does not exist.
MATRIX = [
    (
        "GET",
        "/api/me",
        {"anonymous": 401, Role.ADMIN: 200, Role.SCHEDULER: 200, Role.PROVIDER: 200},
    ),
    (
        "GET",
        "/api/users",
        {"anonymous": 401, Role.ADMIN: 200, Role.SCHEDULER: 200, Role.PROVIDER: 403},
    ),
    (
        "POST",
        "/api/users",
        {"anonymous": 401, Role.ADMIN: 201, Role.SCHEDULER: 403, Role.PROVIDER: 403},
    ),
    (
        "GET",
        "/api/users/{own}",
        {"anonymous": 401, Role.ADMIN: 200, Role.SCHEDULER: 200, Role.PROVIDER: 403},
    ),
    (
        "GET",
        "/api/users/{other}",
        {"anonymous": 401, Role.ADMIN: 404, Role.SCHEDULER: 404, Role.PROVIDER: 403},
    ),
    (
        "GET",
        "/api/users/{missing}",
        {"anonymous": 401, Role.ADMIN: 404, Role.SCHEDULER: 404, Role.PROVIDER: 403},
    ),
    (
        "POST",
        "/api/users/{own}/unlock",
        {"anonymous": 401, Role.ADMIN: 200, Role.SCHEDULER: 403, Role.PROVIDER: 403},
    ),
    (
        "POST",
        "/api/users/{other}/unlock",
        {"anonymous": 401, Role.ADMIN: 404, Role.SCHEDULER: 403, Role.PROVIDER: 403},
    ),
    (
        "GET",
        "/api/audit-events",
        {"anonymous": 401, Role.ADMIN: 200, Role.SCHEDULER: 403, Role.PROVIDER: 403},
    ),
    ("GET", "/admin", {"anonymous": 303, Role.ADMIN: 200, Role.SCHEDULER: 403, Role.PROVIDER: 403}),
    (
        "GET",
        "/scheduler",
        {"anonymous": 303, Role.ADMIN: 200, Role.SCHEDULER: 200, Role.PROVIDER: 403},
    ),
    (
        "GET",
        "/scheduler/hours",
        {"anonymous": 303, Role.ADMIN: 200, Role.SCHEDULER: 200, Role.PROVIDER: 403},
    ),
    (
        "GET",
        "/provider",
        {"anonymous": 303, Role.ADMIN: 403, Role.SCHEDULER: 403, Role.PROVIDER: 200},
    ),
]


@pytest.mark.parametrize("role", ROLES, ids=lambda r: getattr(r, "value", r))
async def test_role_matrix(client, factory: Factory, role):
    clinic = await factory.clinic()
    own = await factory.staff(Role.PROVIDER, clinic)
    other = await factory.staff(Role.PROVIDER)  # another clinic
    headers = {}
    if role != "anonymous":
        headers = await bearer_login(client, await factory.staff(role, clinic))
    ids = {"own": own.id, "other": other.id, "missing": uuid.uuid4()}
    for method, template, expected in MATRIX:
        body = None
        if method == "POST" and template == "/api/users":
            body = {
                "email": f"{uuid.uuid4().hex[:8]}@c.example",
                "full_name": "N",
                "role": "provider",
                "password": "long-enough-password",
            }
        resp = await client.request(
            method, template.format(**ids), json=body, headers=headers, allow_redirects=False
        )
        assert resp.status == expected[role], f"{role} {method} {template}"
        if resp.status in (404, 403) and template.startswith("/api"):
            error = (await resp.json())["error"]
            # a user of another clinic answers exactly like one that does not exist
            if resp.status == 404:
                assert error == {"code": "not_found", "message": "No such user."}


async def test_other_clinics_user_list_is_never_shown(client, factory: Factory):
    clinic = await factory.clinic()
    scheduler = await factory.staff(Role.SCHEDULER, clinic)
    await factory.staff(Role.PROVIDER, clinic)
    stranger = await factory.staff(Role.PROVIDER)
    headers = await bearer_login(client, scheduler)
    users = await (await client.get("/api/users", headers=headers)).json()
    assert {u["clinic_id"] for u in users} == {str(clinic.id)}
    assert stranger.user.email not in {u["email"] for u in users}


async def test_refusals_are_audited(client, factory: Factory, db):
    clinic = await factory.clinic()
    scheduler = await factory.staff(Role.SCHEDULER, clinic)
    stranger = await factory.staff(Role.PROVIDER)
    headers = await bearer_login(client, scheduler)
    assert (await client.get(f"/api/users/{stranger.id}", headers=headers)).status == 404
    assert (await client.get("/api/audit-events", headers=headers)).status == 403
    assert (await client.get("/api/me")).status == 401
    async with db.session() as session:
        denied = (
            await session.exec(select(AuditEvent).where(AuditEvent.outcome == "denied"))
        ).all()
    by_action = {(e.action, e.actor_id) for e in denied}
    assert ("user.read", str(scheduler.id)) in by_action
    assert ("auth.refused", str(scheduler.id)) in by_action
    assert ("auth.refused", None) in by_action
    assert all(e.client_addr == "127.0.0.1" for e in denied)


async def test_audit_events_of_one_clinic_only(client, factory: Factory):
    clinic = await factory.clinic()
    admin = await factory.staff(Role.ADMIN, clinic)
    other_admin = await factory.staff(Role.ADMIN)
    await bearer_login(client, other_admin)
    headers = await bearer_login(client, admin)
    events = await (await client.get("/api/audit-events", headers=headers)).json()
    assert events, "the admin's own login is in the trail"
    assert {e["clinic_id"] for e in events} == {str(clinic.id)}
