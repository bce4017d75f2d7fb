"""Every API operation against /api/openapi.json with schemathesis: no server errors, and every
answer matches the schema it documents (issue 15). Runs against a real server process on this
test's database (SQLite, or PostgreSQL and Redis when DATABASE_URL and REDIS_URL are set), signed
in through the login form as staff (session cookie plus the CSRF header), bounded in examples and
deterministic: hypothesis derandomized, no example database.

Each operation runs twice: as a provider (the records, with a patient in their care) and as an
admin (staff, audit, break-glass review, scheduling set-up). Path parameters are drawn from the
generated values and from objects that exist (the seeded patient, note, staff, appointment and
visit),
so the handlers behind the 404s run too. Signing out runs last.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import time
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.core.failures import Failure, FailureGroup
from sqlmodel import select

from app.core.models import Role
from scheduling.models import AvailabilityRule, ProviderSchedule
from signaling.models import Visit
from tests.conftest import Factory, StaffAccount
from tests.records.conftest import put_in_care
from tests.support.servers import Server, app_server

EXAMPLES = 5  # per operation and role: about 600 requests in all
SIGN_OUT = ("POST", "/api/auth/logout")


@dataclass
class Seeded:
    provider: StaffAccount
    admin: StaffAccount
    known: dict[str, str]


async def seed(factory: Factory) -> Seeded:
    clinic = await factory.clinic()
    provider = await factory.staff(Role.PROVIDER, clinic)
    admin = await factory.staff(Role.ADMIN, clinic)
    patient = await factory.patient(clinic)
    appointment = await put_in_care(factory.db, clinic, patient, provider, days_ago=3)
    async with factory.db.session() as session:
        schedule = (
            await session.exec(
                select(ProviderSchedule).where(ProviderSchedule.provider_id == provider.id)
            )
        ).one()
        # Mondays from nine until midnight: "00:00:00" ends the day.
        session.add(
            AvailabilityRule(
                schedule_id=schedule.id, weekday=0, start_time=time(9), end_time=time(0)
            )
        )
        # The appointment's video visit, still open: guests, attendance, ICE servers, its note.
        visit = Visit(
            appointment_id=appointment.id,
            clinic_id=clinic.id,
            provider_id=provider.id,
            patient_id=patient.id,
        )
        session.add(visit)
        await session.commit()
    known = {
        "visit_id": str(visit.id),
        "patient_id": str(patient.id),
        "provider_id": str(provider.id),
        "user_id": str(provider.id),
        "appointment_id": str(appointment.id),
    }
    return Seeded(provider, admin, known)


def sign_in(server: Server, account: StaffAccount) -> tuple[requests.Session, dict[str, str]]:
    """A browser-like session: the login form's cookie, and the CSRF header unsafe calls need."""
    http = requests.Session()
    resp = http.post(
        f"{server.url}/login",
        data={"email": account.user.email, "password": account.password},
        allow_redirects=False,
        timeout=30,
    )
    assert resp.status_code == 303, resp.text
    if resp.headers["Location"].startswith("/login/mfa"):  # admins give their code too
        resp = http.post(
            f"{server.url}/login/mfa",
            data={"code": account.totp_code()},
            allow_redirects=False,
            timeout=30,
        )
        assert resp.status_code == 303, resp.text
    me = http.get(f"{server.url}/api/me", timeout=30)
    assert me.status_code == 200, me.text
    return http, {"X-CSRF-Token": me.json()["csrf_token"]}


def signed_note(server: Server, http: requests.Session, headers: dict[str, str], pid: str) -> str:
    resp = http.post(
        f"{server.url}/api/patients/{pid}/notes",
        json={"sections": {"plan": "Rest and fluids."}},
        headers=headers,
        timeout=30,
    )
    assert resp.status_code == 201, resp.text
    note = resp.json()
    resp = http.post(
        f"{server.url}/api/notes/{note['id']}/sign",
        json={"version": note["version"]},
        headers=headers,
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    return str(note["id"])


def run_operations(server: Server, seeded: Seeded) -> list[str]:
    """Every operation for each role; the failures, one line each."""
    schema = schemathesis.openapi.from_url(f"{server.url}/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(key=lambda op: (op.method.upper(), op.path) == SIGN_OUT)
    failures: list[str] = []
    for account in (seeded.provider, seeded.admin):
        http, headers = sign_in(server, account)
        if account is seeded.provider:
            seeded.known["note_id"] = signed_note(server, http, headers, seeded.known["patient_id"])
        for operation in operations:
            failures += check_operation(server, operation, http, headers, seeded.known)
    return failures


def check_operation(
    server: Server,
    operation: Any,
    http: requests.Session,
    headers: dict[str, str],
    known: dict[str, str],
) -> list[str]:
    names = {p.name for p in operation.path_parameters}
    strategy = operation.as_strategy()
    if names and names <= set(known):
        strategy = st.one_of(
            strategy, operation.as_strategy(path_parameters={n: known[n] for n in names})
        )
    found: list[str] = []

    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @hypothesis.given(case=strategy)
    def examples(case: Any) -> None:
        # The session is this test's: drop the credentials generated from the security schemes.
        case.headers = {
            k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"
        }
        case.cookies = {}
        response = case.call(base_url=server.url, session=http, headers=headers, timeout=30)
        import os

        if os.environ.get("ST_DEBUG"):
            with open(os.environ["ST_DEBUG"], "a") as out:
                out.write(f"{operation.method.upper()} {operation.path} {response.status_code}\n")
        try:
            case.validate_response(
                response,
                checks=[not_a_server_error, response_schema_conformance],
                headers=headers,
            )
        except (FailureGroup, Failure) as exc:  # one failure, or a group of them
            found.append(
                f"{operation.method.upper()} {operation.path} -> {response.status_code}: "
                f"{' '.join(str(exc).split())[:600]}"
            )

    examples()
    return found


async def test_every_operation_answers_without_server_errors_and_as_documented(
    factory: Factory, process_env: dict[str, str]
) -> None:
    seeded = await seed(factory)
    with app_server(process_env) as server:
        failures = await asyncio.to_thread(run_operations, server, seeded)
    assert failures == [], "\n".join(failures)
