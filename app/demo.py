"""Demo data: one clinic, its staff with known passwords, and patients; safe to run twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlmodel import select

from app.accounts import service as accounts
from app.accounts.schemas import UserCreate
from app.core.db import Database
from app.core.models import Clinic, Patient, Role, User
from scheduling.demo import seed_calendars

DEMO_CLINIC = "Riverside Family Clinic"
DEMO_TIMEZONE = "America/New_York"
DEMO_PHONE = "+1 212 555 0142"  # 555-01xx: reserved for fiction


@dataclass(frozen=True)
class DemoAccount:
    email: str
    full_name: str
    role: Role
    password: str


DEMO_ACCOUNTS = (
    DemoAccount("admin@riverside.example", "Alex Admin", Role.ADMIN, "demo-admin-password"),
    DemoAccount(
        "scheduler@riverside.example", "Sam Scheduler", Role.SCHEDULER, "demo-scheduler-password"
    ),
    DemoAccount(
        "dr.okafor@riverside.example", "Dr. Ada Okafor", Role.PROVIDER, "demo-provider-password"
    ),
    DemoAccount(
        "dr.lindqvist@riverside.example",
        "Dr. Erik Lindqvist",
        Role.PROVIDER,
        "demo-provider-password",
    ),
)

DEMO_PATIENTS = (
    ("Maria", "Garcia", date(1984, 3, 12), "maria.garcia@patients.example", "es"),
    ("James", "Chen", date(1971, 11, 2), "james.chen@patients.example", "en"),
    ("Aisha", "Rahman", date(1995, 7, 25), "aisha.rahman@patients.example", "en"),
    ("Tomasz", "Nowak", date(1958, 1, 30), "tomasz.nowak@patients.example", "pl"),
)


async def seed_demo(db: Database) -> list[DemoAccount]:
    """Create what is missing; return the accounts created now (their passwords are shown once)."""
    created: list[DemoAccount] = []
    async with db.session() as session:
        clinic = (await session.exec(select(Clinic).where(Clinic.name == DEMO_CLINIC))).first()
        if clinic is None:
            clinic = Clinic(name=DEMO_CLINIC, timezone=DEMO_TIMEZONE, phone=DEMO_PHONE)
            session.add(clinic)
            await session.commit()
        elif clinic.phone is None:  # seeded before clinics had a phone
            clinic.phone = DEMO_PHONE
            session.add(clinic)
            await session.commit()
        for account in DEMO_ACCOUNTS:
            exists = (
                await session.exec(select(User.id).where(User.email == account.email))
            ).first()
            if exists is None:
                await accounts.create_user(
                    session,
                    clinic_id=clinic.id,
                    user_in=UserCreate(
                        email=account.email,
                        full_name=account.full_name,
                        role=account.role,
                        password=account.password,
                    ),
                )
                created.append(account)
        for given, family, born, email, language in DEMO_PATIENTS:
            query = select(Patient.id).where(
                Patient.clinic_id == clinic.id,
                Patient.family_name == family,
                Patient.birth_date == born,
            )
            if (await session.exec(query)).first() is None:
                session.add(
                    Patient(
                        clinic_id=clinic.id,
                        given_name=given,
                        family_name=family,
                        birth_date=born,
                        email=email,
                        preferred_language=language,
                        timezone=DEMO_TIMEZONE,
                    )
                )
        await session.commit()
        await seed_calendars(session, clinic_id=clinic.id, timezone=clinic.timezone)
    return created
