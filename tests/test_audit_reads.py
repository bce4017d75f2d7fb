"""Reading the audit trail is itself audited: who read it, for which clinic."""

from __future__ import annotations

from app.core.models import Role
from tests.conftest import Factory, bearer_login


async def test_reading_the_audit_trail_is_on_the_trail(client, factory: Factory):
    clinic = await factory.clinic()
    admin = await factory.staff(Role.ADMIN, clinic)
    headers = await bearer_login(client, admin)
    first = await client.get("/api/audit-events", headers=headers)
    assert first.status == 200
    assert "audit.read" not in {e["action"] for e in await first.json()}

    events = await (await client.get("/api/audit-events", headers=headers)).json()
    reads = [e for e in events if e["action"] == "audit.read"]
    assert len(reads) == 1, reads
    assert reads[0]["actor_id"] == str(admin.id)
    assert reads[0]["clinic_id"] == str(clinic.id)
    assert reads[0]["outcome"] == "success"
