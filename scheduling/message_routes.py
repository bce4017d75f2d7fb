"""HTTP handlers for the clinic's emails: undelivered messages, an admin's retry, and the
development mailbox (only when no SMTP server is configured, never in production)."""

from __future__ import annotations

import re

import aiohttp_jinja2
from aiohttp import web

from app.core.errors import NotFound
from app.core.models import Role
from app.web.api import model_response, path_uuid
from app.web.audited import Recorded, run_audited
from app.web.identity import authorize, staff_actor
from app.web.keys import SETTINGS
from scheduling import deliveries
from scheduling.access import clinic_of
from scheduling.handover import message_public
from scheduling.models import Channel
from scheduling.routes import ANY_STAFF, MANAGERS
from scheduling.schemas import TroublePublic, TroublesPublic
from scheduling.views import record_patients

routes = web.RouteTableDef()
_URL = re.compile(r"(https?://\S+)")


@routes.get("/api/messages/undelivered")
async def undelivered(request: web.Request) -> web.Response:
    """The clinic's failed emails and those being retried (admins and schedulers)."""
    actor = staff_actor(request, await authorize(request, *MANAGERS))
    found = await run_audited(
        request,
        actor,
        lambda session: deliveries.troubles(session, clinic_of(actor)),
        action="email.undelivered",
        audit_success=False,
    )
    await record_patients(request, actor, "email.undelivered", [t.patient for t in found])
    messages = [
        TroublePublic(
            **message_public(t.message).model_dump(),
            appointment_id=t.appointment.id,
            patient_name=f"{t.patient.given_name} {t.patient.family_name}",
            appointment_start=t.appointment.start_at,
        )
        for t in found
    ]
    statuses = [m.status for m in messages]
    return model_response(
        TroublesPublic(
            failed=statuses.count("failed"),
            retrying=statuses.count("retrying"),
            messages=messages,
            dev_mailbox=request.app[SETTINGS].dev_mailbox,
        )
    )


@routes.post("/api/messages/{message_id}/retry")
async def retry(request: web.Request) -> web.Response:
    """Send a failed email again now (admins of the clinic); audited."""
    actor = staff_actor(request, await authorize(request, Role.ADMIN))
    message_id = path_uuid(request, "message_id")
    message, _appointment = await run_audited(
        request,
        actor,
        lambda session: deliveries.retry(session, clinic_of(actor), message_id),
        action="email.retry",
        object_type="outbox_message",
        object_id=message_id,
        recorded=lambda found: Recorded(patient_id=found[1].patient_id),
    )
    return model_response(message_public(message))


def _pieces(text: str) -> list[tuple[str, bool]]:
    """The body as (text, is_link) pieces, so the page can make links clickable."""
    return [(piece, bool(_URL.fullmatch(piece))) for piece in _URL.split(text) if piece]


@routes.get("/dev/mailbox")
async def dev_mailbox(request: web.Request) -> web.StreamResponse:
    """The emails and texts the outbox kept instead of sending (development without SMTP or
    SMS provider); staff only."""
    staff = await authorize(request, *ANY_STAFF)
    settings = request.app[SETTINGS]
    if not (settings.dev_mailbox or settings.sms_dev_mailbox):
        raise NotFound(
            "The development mailbox is off: an SMTP server and an SMS provider are configured."
        )
    actor = staff_actor(request, staff)
    kept = await run_audited(
        request,
        actor,
        lambda session: deliveries.dev_mailbox_with_patients(session, clinic_of(actor)),
        action="email.dev_mailbox",
        audit_success=False,
    )
    await record_patients(request, actor, "email.dev_mailbox", [patient for _m, patient in kept])
    emails = [
        {
            "id": str(message.id),
            "subject": message.subject,
            "to": message.to_addr,
            "sent_at": message.sent_at,
            "kind": message.kind,
            "text": message.channel == Channel.SMS,
            "pieces": _pieces(message.body_text),
        }
        for message, _patient in kept
    ]
    return aiohttp_jinja2.render_template(
        "scheduling/mailbox.html", request, {"staff": staff, "emails": emails}
    )
