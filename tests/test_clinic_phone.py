"""The clinic's phone number: admins set it; every patient page names the clinic and shows it."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from sqlmodel import select

from app.core.audit import AuditEvent
from app.core.db import Database
from app.core.models import Role
from tests.conftest import Factory, bearer_login
from tests.signaling.conftest import WaitingFactory


async def test_only_an_admin_sets_their_own_clinics_phone(
    client: TestClient, factory: Factory, db: Database
):
    clinic = await factory.clinic()
    admin = await bearer_login(client, await factory.staff(Role.ADMIN, clinic))
    other_admin = await bearer_login(client, await factory.staff(Role.ADMIN))
    for role in (Role.PROVIDER, Role.SCHEDULER):
        headers = await bearer_login(client, await factory.staff(role, clinic))
        resp = await client.patch("/api/clinic", json={"phone": "+1 555 0100"}, headers=headers)
        assert resp.status == 403, role
    resp = await client.patch("/api/clinic", json={"phone": "+1 (555) 0100"}, headers=admin)
    assert resp.status == 200
    assert (await resp.json())["phone"] == "+1 (555) 0100"
    me = await (await client.get("/api/me", headers=admin)).json()
    assert me["clinic"]["phone"] == "+1 (555) 0100"
    # Another clinic's admin changes their own clinic only.
    await client.patch("/api/clinic", json={"phone": "+44 20 7946 0000"}, headers=other_admin)
    me = await (await client.get("/api/me", headers=admin)).json()
    assert me["clinic"]["phone"] == "+1 (555) 0100"

    for bad in ("call us", "", "1", "+1 555 0100 ext. <b>", "9" * 41):
        resp = await client.patch("/api/clinic", json={"phone": bad}, headers=admin)
        assert resp.status == 400, bad
        assert "phone" in (await resp.json())["error"]["fields"]
    resp = await client.patch("/api/clinic", json={"phone": None}, headers=admin)
    assert resp.status == 200 and (await resp.json())["phone"] is None
    async with db.session() as session:
        events = (
            await session.exec(select(AuditEvent).where(AuditEvent.action == "clinic.update"))
        ).all()
    assert len(events) == 3 and {e.object_id for e in events} >= {str(clinic.id)}


async def test_patient_pages_name_the_clinic_and_its_phone(
    client: TestClient, factory: Factory, db: Database, settings
):
    waiting = WaitingFactory(db, factory, settings)
    v = await waiting.visitable()
    admin = await bearer_login(client, await factory.staff(Role.ADMIN, v.clinic))
    page = await (await client.get(f"/join/{v.token}")).text()
    assert v.clinic.name in page and "tel:" not in page
    await client.patch("/api/clinic", json={"phone": "+1 555 0100"}, headers=admin)
    page = await (await client.get(f"/join/{v.token}")).text()
    footer = page[page.index('class="clinic-footer"') :]
    assert v.clinic.name in footer and 'href="tel:+15550100"' in footer
    # Staff pages carry no patient footer.
    staff_page = await (await client.get("/admin", headers=admin)).text()
    assert "clinic-footer" not in staff_page
