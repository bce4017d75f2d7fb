"""Check-in rules: a join link leads through identity, consent and a device check to the queue."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from app.core.errors import Conflict, DomainError, NotFound
from app.core.events import AppointmentChanged, raise_event
from app.core.models import Clinic, Patient, User, utcnow
from app.intake import service as intake
from app.web.identity import Actor, PatientClaims
from scheduling import lifecycle
from scheduling.links import LinkState, link_state, read_join_link
from scheduling.models import Appointment, AppointmentView
from scheduling.service import appointment_for
from signaling.models import CheckIn, ConsentDocument, ConsentRecord, WaitingMessage

DEFAULT_CONSENT_TITLE = "Consent to a telehealth visit"
DEFAULT_CONSENT_BODY = """\
This visit takes place over video instead of in person. By continuing you agree that:
1. Your provider will assess and advise you over video, which has limits: some conditions need
   an in-person examination, and your provider may ask you to come in.
2. The video is encrypted between your browser and the clinic's server and is not recorded.
   Notes your provider writes become part of your medical record, as after any visit.
3. You are in a private place, and you can stop the visit at any time.
4. In an emergency, call your local emergency number instead of waiting for this visit."""

LINK_MESSAGES = {
    LinkState.TOO_EARLY: "It is too early to check in; please come back when check-in opens.",
    LinkState.CANCELLED: "This appointment was cancelled; please contact the clinic.",
    LinkState.REPLACED: "This appointment was moved; please use the link in the newer email.",
    LinkState.EXPIRED: "This visit is over, so the link has expired.",
    LinkState.VISIT_ENDED: "This visit has ended; the link now shows its summary.",
}


class LinkNotOpen(DomainError):
    status = 410
    code = "link_not_open"


class LinkLocked(DomainError):
    status = 423
    code = "link_locked"


def locked_text(clinic: Clinic) -> str:
    """What a patient whose link is locked reads: whom to call, and that they can help."""
    call = f"{clinic.name} on {clinic.phone}" if clinic.phone else clinic.name
    return (
        "This link is locked after too many wrong dates of birth. The clinic has been told; "
        f"please call {call}: they can unlock your check-in."
    )


async def link_locked(session: AsyncSession, clinic_id: uuid.UUID) -> LinkLocked:
    """The 423 of a locked link, naming the clinic's phone number when it has one."""
    clinic = await session.get(Clinic, clinic_id)
    assert clinic is not None
    return LinkLocked(
        locked_text(clinic), detail={"clinic_name": clinic.name, "clinic_phone": clinic.phone}
    )


class NeedsStep(DomainError):
    """A later step was asked for before an earlier one was done."""

    status = 409
    code = "step_missing"


@dataclass(frozen=True)
class Arrival:
    """What a join link resolves to."""

    appointment: Appointment
    check_in: CheckIn
    patient: Patient
    provider: User
    #: The patient has sent their intake answers (the step between consent and devices).
    intake_done: bool = False


def progress(
    first_step: str,
    first_done: bool,
    *,
    consented: bool,
    waiting: bool,
    visit_id: uuid.UUID | None,
    provider: User,
    appointment: Appointment,
    intake_done: bool = True,
) -> dict[str, object]:
    """Where someone is on their way into a visit, in the shape the check-in page reads.

    Patients start by confirming their identity, guests by giving their name; then both accept
    the consent, patients answer the clinic's intake questions, both check their devices, wait,
    and are admitted to the visit `visit_id`.
    """
    if not first_done:
        step = first_step
    elif not consented:
        step = "consent"
    elif visit_id is not None:
        step = "admitted"
    elif waiting:
        step = "waiting"
    elif not intake_done:
        step = "intake"
    else:
        step = "device_check"
    return {
        "step": step,
        # A walk-in waits for whichever provider of the walk-in queue takes them.
        "provider_name": "the next available provider"
        if appointment.on_demand and visit_id is None
        else provider.full_name,
        "on_demand": appointment.on_demand,
        "starts_at": appointment.start_at.isoformat(),
        "visit_url": f"/visit/{visit_id}" if visit_id else None,
    }


def arrival_progress(arrival: Arrival) -> dict[str, object]:
    """Where the patient is in check-in."""
    check_in = arrival.check_in
    return progress(
        "identity",
        check_in.identity_verified_at is not None,
        consented=check_in.consent_id is not None,
        waiting=check_in.waiting_since is not None,
        visit_id=check_in.visit_id,
        provider=arrival.provider,
        appointment=arrival.appointment,
        intake_done=arrival.intake_done,
    )


async def resolve_link(
    session: AsyncSession,
    settings: Settings,
    token: str,
    *,
    now: datetime | None = None,
    after_visit: bool = False,
) -> Arrival:
    """The appointment behind an open link, with its check-in (created on first use).

    With `after_visit`, a link whose visit has ended (still inside its window) resolves too:
    the patient may confirm their identity again and read the visit summary, nothing else.
    """
    claim = await read_join_link(session, settings, token)
    appointment = await session.get(Appointment, claim.appointment_id) if claim else None
    state = link_state(settings, appointment, claim, now or utcnow())
    if state is LinkState.INVALID or appointment is None:
        raise NotFound("This link is not valid.")
    if state is not LinkState.OPEN and not (after_visit and state is LinkState.VISIT_ENDED):
        raise LinkNotOpen(LINK_MESSAGES[state], fields={"link": state.value})
    check_in = await session.get(CheckIn, appointment.id)
    if check_in is None:
        check_in = CheckIn(
            appointment_id=appointment.id,
            clinic_id=appointment.clinic_id,
            provider_id=appointment.provider_id,
            patient_id=appointment.patient_id,
        )
        session.add(check_in)
        try:
            await session.commit()
        except sa.exc.IntegrityError:  # two tabs opened the link at once
            await session.rollback()
            check_in = await session.get(CheckIn, appointment.id)
            assert check_in is not None
    if check_in.failures_version not in (None, appointment.version):
        await _clear_failures(session, check_in)  # typed into a link that was re-issued since
    if check_in.locks(appointment.version):
        raise await link_locked(session, appointment.clinic_id)
    patient = await session.get(Patient, appointment.patient_id)
    provider = await session.get(User, appointment.provider_id)
    assert patient is not None and provider is not None
    intake_done = await intake.is_submitted(session, appointment.id)
    return Arrival(appointment, check_in, patient, provider, intake_done)


def require_patient(arrival: Arrival, claims: PatientClaims | None) -> None:
    """The caller confirmed their identity for exactly this appointment and its current time."""
    if (
        claims is None
        or claims.appointment_id != arrival.appointment.id
        or claims.version != arrival.appointment.version
        or arrival.check_in.identity_verified_at is None
    ):
        raise NeedsStep("Please confirm your date of birth first.", fields={"step": "identity"})


async def verify_identity(
    session: AsyncSession, settings: Settings, arrival: Arrival, birth_date: date
) -> bool:
    """True when the date of birth matches; wrong guesses are counted and lock the link."""
    check_in = arrival.check_in
    if birth_date == arrival.patient.birth_date:
        check_in.identity_verified_at = check_in.identity_verified_at or utcnow()
        check_in.identity_failures = 0
        check_in.updated_at = utcnow()
        lifecycle.arrive(session, arrival.appointment)
        session.add(check_in)
        await session.commit()
        return True
    failures = (
        await session.exec(
            sa.update(CheckIn)
            .where(col(CheckIn.appointment_id) == check_in.appointment_id)
            .values(
                identity_failures=col(CheckIn.identity_failures) + 1,
                failures_version=arrival.appointment.version,
            )
            .returning(col(CheckIn.identity_failures))
        )
    ).scalar_one()
    if failures >= settings.identity_max_failures:
        await session.exec(
            sa.update(CheckIn)
            .where(col(CheckIn.appointment_id) == check_in.appointment_id)
            .values(link_locked_at=utcnow())
        )
    await session.commit()
    await session.refresh(check_in)
    return False


async def _clear_failures(session: AsyncSession, check_in: CheckIn) -> None:
    check_in.identity_failures = 0
    check_in.failures_version = None
    check_in.link_locked_at = None
    check_in.updated_at = utcnow()
    session.add(check_in)
    await session.commit()


async def unlock_link(
    session: AsyncSession, actor: Actor, appointment_id: uuid.UUID
) -> AppointmentView:
    """Staff who called the patient let their link work again, with a fresh count of tries.

    Anyone who may read the appointment may unlock it (a provider their own appointments).
    """
    view = await appointment_for(session, actor, appointment_id)
    check_in = await session.get(CheckIn, appointment_id)
    if check_in is None or not check_in.locks(view.appointment.version):
        raise Conflict(
            "This patient's check-in is not locked.", fields={"appointment_id": "not locked"}
        )
    raise_event(session, AppointmentChanged(appointment_id))
    await _clear_failures(session, check_in)
    return view


async def current_consent(session: AsyncSession, clinic_id: uuid.UUID) -> ConsentDocument:
    """The clinic's newest consent text; a clinic that has none gets the standard one."""
    query = (
        select(ConsentDocument)
        .where(ConsentDocument.clinic_id == clinic_id)
        .order_by(col(ConsentDocument.version).desc())
        .limit(1)
    )
    document = (await session.exec(query)).first()
    if document is None:
        document = ConsentDocument(
            clinic_id=clinic_id, version=1, title=DEFAULT_CONSENT_TITLE, body=DEFAULT_CONSENT_BODY
        )
        session.add(document)
        try:
            await session.commit()
        except sa.exc.IntegrityError:
            await session.rollback()
            return await current_consent(session, clinic_id)
    return document


async def publish_consent(
    session: AsyncSession, clinic_id: uuid.UUID, *, title: str, body: str
) -> ConsentDocument:
    """A new version of the clinic's consent; patients accept the newest from then on."""
    current = await current_consent(session, clinic_id)
    document = ConsentDocument(
        clinic_id=clinic_id, version=current.version + 1, title=title, body=body
    )
    session.add(document)
    await session.commit()
    return document


async def accepted_consent(
    session: AsyncSession, clinic_id: uuid.UUID, version: int
) -> ConsentDocument:
    """The clinic's current consent, provided `version` (what the person read) is it."""
    document = await current_consent(session, clinic_id)
    if version != document.version:
        raise Conflict(
            "The consent text has changed; please read the current version.",
            fields={"version": f"current version is {document.version}"},
        )
    return document


def consent_public(document: ConsentDocument) -> dict[str, object]:
    return {"version": document.version, "title": document.title, "body": document.body}


async def accept_consent(
    session: AsyncSession, arrival: Arrival, *, version: int, client_addr: str | None
) -> ConsentRecord:
    document = await accepted_consent(session, arrival.appointment.clinic_id, version)
    record = ConsentRecord(
        appointment_id=arrival.appointment.id,
        patient_id=arrival.patient.id,
        document_id=document.id,
        version=document.version,
        accepted_at=utcnow(),
        client_addr=client_addr,
    )
    session.add(record)
    await session.flush()
    arrival.check_in.consent_id = record.id
    arrival.check_in.updated_at = utcnow()
    session.add(arrival.check_in)
    await session.commit()
    return record


async def record_device_check(
    session: AsyncSession, arrival: Arrival, result: dict[str, object]
) -> None:
    arrival.check_in.device_check = json.dumps(result, sort_keys=True)[:500]
    arrival.check_in.device_checked_at = utcnow()
    arrival.check_in.updated_at = utcnow()
    session.add(arrival.check_in)
    await session.commit()


async def enter_queue(session: AsyncSession, arrival: Arrival) -> CheckIn:
    """Put the patient in their provider's queue (keeping an earlier place on a rejoin)."""
    check_in = arrival.check_in
    if check_in.consent_id is None:
        raise NeedsStep("Please accept the consent first.", fields={"step": "consent"})
    if check_in.visit_id is not None:
        return check_in
    if check_in.waiting_since is None:
        check_in.waiting_since = utcnow()
    check_in.left_at = None
    check_in.updated_at = utcnow()
    lifecycle.check_in(session, arrival.appointment)
    session.add(check_in)
    await session.commit()
    return check_in


async def leave_queue(session: AsyncSession, appointment_id: uuid.UUID) -> CheckIn | None:
    """The patient was away longer than the grace period: they lose their place."""
    check_in = await session.get(CheckIn, appointment_id)
    if check_in is None or check_in.waiting_since is None or check_in.visit_id is not None:
        return None
    check_in.waiting_since = None
    check_in.left_at = utcnow()
    check_in.updated_at = utcnow()
    session.add(check_in)
    await session.commit()
    return check_in


CLINIC = "clinic"
PATIENT = "patient"
REASON = "reason"


async def store_waiting_message(
    session: AsyncSession,
    appointment_id: uuid.UUID,
    text: str,
    *,
    sender: str = CLINIC,
    author_id: uuid.UUID | None = None,
    kind: str = "message",
) -> WaitingMessage:
    """Keep one line of the waiting room: the clinic's, the patient's answer or their reason.

    Every waiting-room text is written here and read through `messages_for`/`reasons_for`.
    """
    message = WaitingMessage(
        appointment_id=appointment_id, author_id=author_id, sender=sender, kind=kind, text=text
    )
    session.add(message)
    await session.commit()
    return message


async def messages_for(session: AsyncSession, appointment_id: uuid.UUID) -> list[WaitingMessage]:
    """The conversation of one waiting room, oldest first (the reason for the visit apart)."""
    query = (
        select(WaitingMessage)
        .where(WaitingMessage.appointment_id == appointment_id, WaitingMessage.kind != REASON)
        .order_by(col(WaitingMessage.sent_at))
    )
    return list((await session.exec(query)).all())


async def reasons_for(
    session: AsyncSession, appointment_ids: list[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The latest reason for the visit each of these patients gave, by appointment."""
    if not appointment_ids:
        return {}
    query = (
        select(WaitingMessage)
        .where(col(WaitingMessage.appointment_id).in_(appointment_ids))
        .where(WaitingMessage.kind == REASON)
        .order_by(col(WaitingMessage.sent_at))
    )
    return {m.appointment_id: m.text for m in (await session.exec(query)).all()}


async def conversations_for(
    session: AsyncSession, appointment_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[WaitingMessage]]:
    """The conversation of each of these waiting rooms, oldest first, by appointment."""
    if not appointment_ids:
        return {}
    query = (
        select(WaitingMessage)
        .where(col(WaitingMessage.appointment_id).in_(appointment_ids))
        .where(WaitingMessage.kind != REASON)
        .order_by(col(WaitingMessage.sent_at))
    )
    found: dict[uuid.UUID, list[WaitingMessage]] = {}
    for message in (await session.exec(query)).all():
        found.setdefault(message.appointment_id, []).append(message)
    return found
