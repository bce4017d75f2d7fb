"""Nobody learns which accounts exist: not from a lock, nor from an email used elsewhere."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from app.core.auth import hash_password
from app.core.models import Role, User
from tests.conftest import Factory, bearer_login

GUESS = "guess-guess-guess"


async def _api(client: TestClient, email: str, password: str) -> tuple[int, dict]:
    resp = await client.post("/api/auth/login", json={"email": email, "password": password})
    return resp.status, await resp.json()


async def _page(client: TestClient, email: str, password: str) -> tuple[int, str]:
    resp = await client.post("/login", data={"email": email, "password": password})
    return resp.status, (await resp.text()).replace(email, "EMAIL")


async def test_a_locked_account_answers_exactly_like_a_wrong_password(
    client: TestClient, factory: Factory
):
    locked = await factory.staff(Role.PROVIDER)
    unlocked = await factory.staff(Role.PROVIDER)
    for _ in range(5):
        await client.post("/api/auth/login", json={"email": locked.user.email, "password": GUESS})
    unknown = "nobody-here@clinic.example"
    answers = {
        "unknown email": await _api(client, unknown, GUESS),
        "wrong password": await _api(client, unlocked.user.email, GUESS),
        "locked, wrong password": await _api(client, locked.user.email, GUESS),
        "locked, right password": await _api(client, locked.user.email, locked.password),
    }
    assert len({str(a) for a in answers.values()}) == 1, answers
    assert answers["unknown email"] == (
        401,
        {"error": {"code": "not_authenticated", "message": "Email or password is incorrect."}},
    )
    pages = {
        await _page(client, unknown, GUESS),
        await _page(client, unlocked.user.email, GUESS),
        await _page(client, locked.user.email, locked.password),
    }
    assert len(pages) == 1 and next(iter(pages))[0] == 401


async def test_the_lock_still_holds_and_the_admin_sees_and_lifts_it(
    client: TestClient, factory: Factory
):
    clinic = await factory.clinic()
    admin = await factory.staff(Role.ADMIN, clinic)
    provider = await factory.staff(Role.PROVIDER, clinic)
    for _ in range(5):
        await client.post("/api/auth/login", json={"email": provider.user.email, "password": GUESS})
    assert (await _api(client, provider.user.email, provider.password))[0] == 401
    headers = await bearer_login(client, admin)
    seen = await (await client.get(f"/api/users/{provider.id}", headers=headers)).json()
    assert seen["locked_until"] is not None
    assert (await client.post(f"/api/users/{provider.id}/unlock", headers=headers)).status == 200
    assert (await _api(client, provider.user.email, provider.password))[0] == 200


async def test_an_address_used_in_another_clinic_is_not_revealed_to_an_admin(
    client: TestClient, factory: Factory
):
    here = await factory.clinic("Northside Clinic")
    there = await factory.clinic("Southside Clinic")
    admin = await factory.staff(Role.ADMIN, here)
    taken_elsewhere = await factory.staff(Role.PROVIDER, there)
    headers = await bearer_login(client, admin)

    async def create(email: str, password: str) -> tuple[int, dict]:
        body = {"email": email, "full_name": "Dr. Same", "role": "provider", "password": password}
        resp = await client.post("/api/users", json=body, headers=headers)
        return resp.status, await resp.json()

    # An address used in another clinic is created exactly like an unused one.
    fresh_status, fresh = await create("never-used@clinic.example", "first long passphrase here")
    status, created = await create(taken_elsewhere.user.email, "second long passphrase here")
    assert (status, fresh_status) == (201, 201)
    assert set(created) == set(fresh) and created["clinic_id"] == str(here.id)
    # Inside one's own clinic a duplicate is a plain conflict: that list is the admin's anyway.
    status, body = await create(taken_elsewhere.user.email, "third long passphrase here")
    assert status == 409
    assert body["error"]["message"] == "A user with this email already exists in your clinic."

    # Each password opens its own account.
    for password, clinic_id in (
        ("second long passphrase here", here.id),
        (taken_elsewhere.password, there.id),
    ):
        status, signed_in = await _api(client, taken_elsewhere.user.email, password)
        assert status == 200 and signed_in["user"]["clinic_id"] == str(clinic_id)


async def test_one_email_and_password_in_two_clinics_asks_which_clinic(
    client: TestClient, factory: Factory
):
    north = await factory.clinic("North Clinic")
    south = await factory.clinic("South Clinic")
    password = "one passphrase for both jobs"
    first = await factory.staff(Role.PROVIDER, north, password=password)
    async with factory.db.session() as session:
        second_user = User(
            clinic_id=south.id,
            email=first.user.email,
            full_name="Same Person",
            role=Role.SCHEDULER,
            password_hash=hash_password(password),
        )
        session.add(second_user)
        await session.commit()
    status, body = await _api(client, first.user.email, password)
    assert status == 409 and body["error"]["code"] == "clinic_choice_required"
    assert {c["name"] for c in body["error"]["detail"]["clinics"]} == {
        "North Clinic",
        "South Clinic",
    }
    resp = await client.post(
        "/api/auth/login",
        json={"email": first.user.email, "password": password, "clinic_id": str(south.id)},
    )
    assert resp.status == 200 and (await resp.json())["user"]["role"] == "scheduler"
    # The sign-in page offers the choice.
    page = await client.post("/login", data={"email": first.user.email, "password": password})
    html = await page.text()
    assert page.status == 409 and '<label for="clinic_id">Clinic</label>' in html
    assert "North Clinic" in html and "South Clinic" in html
    resp = await client.post(
        "/login",
        data={"email": first.user.email, "password": password, "clinic_id": str(north.id)},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/provider"
    # A wrong password with either clinic is the usual answer.
    assert (await _api(client, first.user.email, GUESS))[0] == 401
