"""Staff MFA: TOTP codes after the password, enrolment, recovery codes, the clinic's rule, resets.

Codes are real ones from pyotp. The window edges are tested against the service with explicit
times (no sleeping); over HTTP only codes of the current step are used.
"""

from __future__ import annotations

import time
import uuid

import pyotp
import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from app.accounts import mfa
from app.accounts.models import MfaRecoveryCode, StaffMfa
from app.core.auth import issue_session_token
from app.core.config import Settings
from app.core.db import Database
from app.core.models import AuditEvent, Clinic, Role, User
from app.main import create_app
from tests.conftest import Factory, StaffAccount, bearer_login, cookie_login, fresh_totp_code


async def _events(db: Database, action: str) -> list[AuditEvent]:
    async with db.session() as session:
        rows = await session.exec(select(AuditEvent).where(AuditEvent.action == action))
        return list(rows.all())


async def _password_step(client: TestClient, account: StaffAccount) -> dict:
    resp = await client.post(
        "/api/auth/login", json={"email": account.user.email, "password": account.password}
    )
    assert resp.status == 200, await resp.text()
    body: dict = await resp.json()
    assert ("oc_session" in resp.cookies) == ("token" in body)  # no session before the code
    return body


def wrong_code(secret: str) -> str:
    """A 6-digit code that no step near now would accept."""
    totp = pyotp.TOTP(secret)
    near = {totp.at(time.time() + 30 * k) for k in range(-3, 4)}
    return next(c for c in (f"{n:06d}" for n in range(1000, 10**6, 7919)) if c not in near)


async def test_admin_gives_a_code_after_the_password_and_only_then_gets_a_session(
    client: TestClient, factory: Factory, db: Database
):
    admin = await factory.staff(Role.ADMIN)
    first = await _password_step(client, admin)
    assert first["mfa"] == "verify" and "token" not in first
    resp = await client.post(
        "/api/auth/mfa", json={"mfa_token": first["mfa_token"], "code": admin.totp_code()}
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status == 200 and (await me.json())["user"]["id"] == str(admin.id)
    logins = [e for e in await _events(db, "auth.login") if e.outcome == "success"]
    assert [e.detail for e in logins] == ["password+totp"]


async def test_half_signed_in_reaches_nothing(client: TestClient, factory: Factory):
    admin = await factory.staff(Role.ADMIN)
    pending = (await _password_step(client, admin))["mfa_token"]
    # The pending token is no session, whichever way it is presented.
    assert (
        await client.get("/api/me", headers={"Authorization": f"Bearer {pending}"})
    ).status == 401
    assert (await client.get("/api/users", cookies={"oc_session": pending})).status == 401
    # A browser between the two steps holds only the pending cookie.
    resp = await client.post(
        "/login",
        data={"email": admin.user.email, "password": admin.password},
        allow_redirects=False,
    )
    assert resp.headers["Location"].startswith("/login/mfa")
    assert "oc_mfa" in resp.cookies and "oc_session" not in resp.cookies
    assert (await client.get("/api/me")).status == 401
    assert (await client.get("/api/audit-events")).status == 401
    page = await client.get("/admin", allow_redirects=False)
    assert page.status == 303 and page.headers["Location"].startswith("/login")
    # Nor can it be stretched into enrolling a new phone for the account.
    enrol = await client.post("/api/auth/mfa/enrol", json={"mfa_token": pending})
    assert enrol.status == 401


@pytest.mark.parametrize(
    ("code_at", "checked_at", "accepted"),
    [
        (0, 0, True),  # the step itself
        (0, 29.999, True),  # its last instant
        (-30, 0, True),  # one step behind (the phone is slow)
        (30, 0, True),  # one step ahead (the phone is fast)
        (-31, 29.999, False),  # two steps behind
        (60, 0, False),  # two steps ahead
        (-60, 0, False),
    ],
)
async def test_the_code_window_is_one_step_either_side(
    factory: Factory, db: Database, code_at: float, checked_at: float, accepted: bool
):
    admin = await factory.staff(Role.ADMIN)
    assert admin.totp_secret
    start = 1_800_000_000 - 1_800_000_000 % 30  # the first instant of a step
    code = pyotp.TOTP(admin.totp_secret).at(start + code_at)
    async with db.session() as session:
        factor = await session.get(StaffMfa, admin.id)
        assert factor is not None
        if accepted:
            assert await mfa.check_code(session, mfa=factor, code=code, now=start + checked_at)
        else:
            with pytest.raises(mfa.WrongCode):
                await mfa.check_code(session, mfa=factor, code=code, now=start + checked_at)


async def test_a_code_is_accepted_once_and_never_an_older_one_after_it(
    client: TestClient, factory: Factory, db: Database
):
    admin = await factory.staff(Role.ADMIN)
    assert admin.totp_secret
    start = 1_800_000_000 - 1_800_000_000 % 30
    totp = pyotp.TOTP(admin.totp_secret)
    async with db.session() as session:
        factor = await session.get(StaffMfa, admin.id)
        assert factor is not None
        await mfa.check_code(session, mfa=factor, code=totp.at(start), now=start + 5)
        with pytest.raises(mfa.CodeReused):  # the same code, same window
            await mfa.check_code(session, mfa=factor, code=totp.at(start), now=start + 20)
        with pytest.raises(mfa.CodeReused):  # the previous step's code, still in the window
            await mfa.check_code(session, mfa=factor, code=totp.at(start - 30), now=start + 20)
        # The next step's code is fine.
        await mfa.check_code(session, mfa=factor, code=totp.at(start + 30), now=start + 31)

    # Over HTTP: one code signs in once.
    code = await fresh_totp_code(db, admin)
    first = await _password_step(client, admin)
    ok = await client.post("/api/auth/mfa", json={"mfa_token": first["mfa_token"], "code": code})
    assert ok.status == 200
    again = await _password_step(client, admin)
    resp = await client.post("/api/auth/mfa", json={"mfa_token": again["mfa_token"], "code": code})
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "mfa_code_reused"


async def test_wrong_codes_lock_the_account_like_wrong_passwords(
    client: TestClient, factory: Factory, db: Database
):
    clinic = await factory.clinic()
    admin = await factory.staff(Role.ADMIN, clinic)
    other_admin = await factory.staff(Role.ADMIN, clinic)
    assert admin.totp_secret
    pending = (await _password_step(client, admin))["mfa_token"]
    wrong = wrong_code(admin.totp_secret)
    statuses = []
    for _ in range(5):
        resp = await client.post("/api/auth/mfa", json={"mfa_token": pending, "code": wrong})
        statuses.append((resp.status, (await resp.json())["error"]["code"]))
    assert statuses == [(401, "mfa_code_wrong")] * 4 + [(423, "account_locked")]
    # Locked: the right code is refused, and the password step answers like a wrong password.
    resp = await client.post(
        "/api/auth/mfa", json={"mfa_token": pending, "code": admin.totp_code()}
    )
    assert resp.status == 423
    resp = await client.post(
        "/api/auth/login", json={"email": admin.user.email, "password": admin.password}
    )
    assert resp.status == 401
    # A right password does not buy another round of guesses before the lock.
    headers = await bearer_login(client, other_admin)
    assert (await client.post(f"/api/users/{admin.id}/unlock", headers=headers)).status == 200
    for _ in range(4):
        pending = (await _password_step(client, admin))["mfa_token"]
        await client.post("/api/auth/mfa", json={"mfa_token": pending, "code": wrong})
    pending = (await _password_step(client, admin))["mfa_token"]
    resp = await client.post("/api/auth/mfa", json={"mfa_token": pending, "code": wrong})
    assert resp.status == 423
    failures = [e for e in await _events(db, "auth.mfa") if e.outcome == "failure"]
    assert len(failures) >= 10 and {e.object_id for e in failures} == {str(admin.id)}


async def test_codes_from_one_address_are_rate_limited(settings_factory, aiohttp_client, factory):
    client = await aiohttp_client(create_app(settings_factory(login_max_per_address=3)))
    admin = await factory.staff(Role.ADMIN)
    assert admin.totp_secret
    pending = (await _password_step(client, admin))["mfa_token"]
    wrong = wrong_code(admin.totp_secret)
    statuses = []
    for _ in range(4):
        resp = await client.post("/api/auth/mfa", json={"mfa_token": pending, "code": wrong})
        statuses.append(resp.status)
    assert statuses == [401, 401, 401, 429]


async def _enrol_by_api(client: TestClient, account: StaffAccount) -> tuple[dict, list[str]]:
    first = await _password_step(client, account)
    assert first["mfa"] == "enrol"
    start = await client.post("/api/auth/mfa/enrol", json={"mfa_token": first["mfa_token"]})
    assert start.status == 200
    enrolment = await start.json()
    account.totp_secret = enrolment["secret"]
    resp = await client.post(
        "/api/auth/mfa/enrol/confirm",
        json={"mfa_token": first["mfa_token"], "code": account.totp_code()},
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    return body, body["recovery_codes"]


async def test_an_admin_without_mfa_enrols_by_api_and_recovery_codes_work_once(
    client: TestClient, factory: Factory, db: Database
):
    admin = await factory.staff(Role.ADMIN, mfa=False)
    first = await _password_step(client, admin)
    start = await client.post("/api/auth/mfa/enrol", json={"mfa_token": first["mfa_token"]})
    enrolment = await start.json()
    assert enrolment["otpauth_uri"].startswith("otpauth://totp/")
    assert f"secret={enrolment['secret']}" in enrolment["otpauth_uri"]
    assert enrolment["qr_svg"].startswith("<svg")
    # A wrong first code enables nothing.
    wrong = wrong_code(enrolment["secret"])
    resp = await client.post(
        "/api/auth/mfa/enrol/confirm", json={"mfa_token": first["mfa_token"], "code": wrong}
    )
    assert resp.status == 401
    body, codes = await _enrol_by_api(client, admin)
    assert body["token"] and len(codes) == 10 and len(set(codes)) == 10
    async with db.session() as session:
        stored = (
            await session.exec(select(MfaRecoveryCode).where(MfaRecoveryCode.user_id == admin.id))
        ).all()
    assert len(stored) == 10
    assert all(r.code_hash.startswith("$argon2") for r in stored)
    assert not {c.replace("-", "") for c in codes} & {r.code_hash for r in stored}

    # A recovery code stands in for the phone once, however it is typed.
    pending = (await _password_step(client, admin))["mfa_token"]
    typed = codes[3].upper().replace("-", " ")
    resp = await client.post("/api/auth/mfa", json={"mfa_token": pending, "code": typed})
    assert resp.status == 200
    pending = (await _password_step(client, admin))["mfa_token"]
    resp = await client.post("/api/auth/mfa", json={"mfa_token": pending, "code": codes[3]})
    assert resp.status == 401
    logins = [e.detail for e in await _events(db, "auth.login") if e.outcome == "success"]
    assert logins == ["password+enrolment", "password+recovery"]
    assert len(await _events(db, "auth.mfa_enrol")) == 1


async def test_an_admin_without_mfa_must_enrol_in_the_browser_before_anything_else(
    client: TestClient, factory: Factory
):
    admin = await factory.staff(Role.ADMIN, mfa=False)
    resp = await client.post(
        "/login",
        data={"email": admin.user.email, "password": admin.password, "next": "/admin"},
        allow_redirects=False,
    )
    assert resp.headers["Location"] == "/login/enrol?next=/admin"
    assert "oc_session" not in resp.cookies
    assert (await client.get("/api/me")).status == 401
    page = await client.get("/login/enrol?next=/admin")
    html = await page.text()
    assert page.status == 200 and "<svg" in html and 'autocomplete="one-time-code"' in html
    assert '<label for="code">' in html
    secret = html.split('id="totp-secret" class="secret">')[1].split("<")[0]
    # Reloading the page keeps the secret just scanned.
    assert secret in await (await client.get("/login/enrol")).text()
    wrong = await client.post("/login/enrol", data={"code": wrong_code(secret), "next": "/admin"})
    assert wrong.status == 401 and "That code is not right" in await wrong.text()
    done = await client.post(
        "/login/enrol", data={"code": pyotp.TOTP(secret).now(), "next": "/admin"}
    )
    text = await done.text()
    assert done.status == 200 and text.count("<li><code>") == 10
    assert 'href="/admin"' in text
    assert (await client.get("/admin")).status == 200


async def test_sessions_from_before_mfa_was_required_end(
    client: TestClient, factory: Factory, db: Database, settings: Settings
):
    """What the migration does for admins: their old sessions (an older epoch) stop working."""
    admin = await factory.staff(Role.ADMIN, mfa=False)
    old, _ = issue_session_token(
        settings, user_id=admin.id, clinic_id=admin.clinic_id, role=Role.ADMIN
    )
    headers = {"Authorization": f"Bearer {old}"}
    assert (await client.get("/api/me", headers=headers)).status == 200
    async with db.session() as session:
        user = await session.get(User, admin.id)
        assert user is not None
        user.session_epoch = 1
        session.add(user)
        await session.commit()
    assert (await client.get("/api/me", headers=headers)).status == 401


async def test_a_clinic_requires_mfa_of_all_staff(
    client: TestClient, factory: Factory, db: Database
):
    clinic = await factory.clinic()
    other = await factory.clinic()
    admin = await factory.staff(Role.ADMIN, clinic)
    provider = await factory.staff(Role.PROVIDER, clinic)
    enrolled = await factory.staff(Role.SCHEDULER, clinic, mfa=True)
    outsider = await factory.staff(Role.PROVIDER, other)
    provider_headers = await bearer_login(client, provider)
    enrolled_headers = await bearer_login(client, enrolled)
    admin_headers = await bearer_login(client, admin)

    for who, expected in ((provider_headers, 403), (enrolled_headers, 403), ({}, 401)):
        resp = await client.put("/api/clinic/security", json={"require_mfa": True}, headers=who)
        assert resp.status == expected
    resp = await client.put(
        "/api/clinic/security", json={"require_mfa": True}, headers=admin_headers
    )
    assert resp.status == 200 and (await resp.json())["require_mfa"] is True
    me = await (await client.get("/api/me", headers=admin_headers)).json()
    assert me["clinic"]["require_mfa"] is True
    # Staff without a second factor are signed out and enrol at their next sign-in; staff with
    # one keep their sessions. Other clinics are untouched.
    assert (await client.get("/api/me", headers=provider_headers)).status == 401
    assert (await client.get("/api/me", headers=enrolled_headers)).status == 200
    assert (await _password_step(client, provider))["mfa"] == "enrol"
    assert "token" in await _password_step(client, outsider)
    async with db.session() as session:
        assert (await session.get(Clinic, other.id)).require_mfa is False  # type: ignore[union-attr]
    events = await _events(db, "clinic.require_mfa")
    assert [(e.actor_id, e.detail) for e in events] == [(str(admin.id), "on")]
    bad = await client.put("/api/clinic/security", json={"require_mfa": "x"}, headers=admin_headers)
    assert bad.status == 400


async def test_an_admin_resets_a_colleagues_mfa(client: TestClient, factory: Factory, db: Database):
    clinic = await factory.clinic()
    admin = await factory.staff(Role.ADMIN, clinic)
    provider = await factory.staff(Role.PROVIDER, clinic, mfa=True)
    scheduler = await factory.staff(Role.SCHEDULER, clinic)
    foreign_admin = await factory.staff(Role.ADMIN)
    provider_headers = await bearer_login(client, provider)
    path = f"/api/users/{provider.id}/mfa/reset"
    matrix = [
        ({}, 401),
        (await bearer_login(client, scheduler), 403),
        (provider_headers, 403),
        (await bearer_login(client, foreign_admin), 404),
    ]
    for headers, expected in matrix:
        assert (await client.post(path, headers=headers)).status == expected
    assert (
        await client.post(f"/api/users/{uuid.uuid4()}/mfa/reset", headers=matrix[3][0])
    ).status == 404
    admin_headers = await bearer_login(client, admin)
    users = await (await client.get("/api/users", headers=admin_headers)).json()
    assert {u["id"]: u["mfa_enabled"] for u in users}[str(provider.id)] is True
    resp = await client.post(path, headers=admin_headers)
    assert resp.status == 200 and (await resp.json())["mfa_enabled"] is False
    # The provider's sessions end; their next sign-in needs no code (the clinic does not ask).
    assert (await client.get("/api/me", headers=provider_headers)).status == 401
    assert "token" in await _password_step(client, provider)
    events = await _events(db, "user.mfa_reset")
    assert [(e.actor_id, e.object_id, e.outcome) for e in events] == [
        (str(admin.id), str(provider.id), "success")
    ]
    # An admin's own reset makes them enrol again at the next sign-in.
    await client.post(f"/api/users/{admin.id}/mfa/reset", headers=admin_headers)
    assert (await _password_step(client, admin))["mfa"] == "enrol"


async def test_anyone_can_turn_on_mfa_from_the_security_page(client: TestClient, factory: Factory):
    provider = await factory.staff(Role.PROVIDER)
    csrf = await cookie_login(client, provider)
    page = await (await client.get("/account/security")).text()
    assert "Set up two-step sign-in" in page
    enrol = await (await client.get("/account/mfa")).text()
    secret = enrol.split('id="totp-secret" class="secret">')[1].split("<")[0]
    resp = await client.post(
        "/account/mfa", data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf}
    )
    assert resp.status == 200 and (await resp.text()).count("<li><code>") == 10
    page = await (await client.get("/account/security")).text()
    assert "10 unused recovery codes left" in page
    client.session.cookie_jar.clear()
    provider.totp_secret = secret
    resp = await client.post(
        "/login",
        data={"email": provider.user.email, "password": provider.password},
        allow_redirects=False,
    )
    assert resp.headers["Location"].startswith("/login/mfa")
    # Without the CSRF token the form is refused (it rides on the session cookie).
    await cookie_login(client, provider)
    assert (await client.post("/account/mfa", data={"code": "123456"})).status == 403
