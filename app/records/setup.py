"""How the patient record plugs into the app: its key ring, routes, pages and FHIR export."""

from __future__ import annotations

from aiohttp import web

from app.attachments import openapi as attachments_openapi
from app.records import attachment_routes, fhir, openapi, pages, routes, visit_routes
from app.records.chart_facts import last_signed_notes
from app.records.crypto import Keyring
from app.records.keys import NOTE_KEYRING
from app.web.keys import SETTINGS
from app.web.setup import add_openapi
from signaling.queue.keys import LAST_SIGNED_NOTES


def setup(app: web.Application) -> None:
    app[NOTE_KEYRING] = Keyring.from_settings(app[SETTINGS])
    # The clinic queue shows when each waiting patient's last note was signed.
    app[LAST_SIGNED_NOTES] = last_signed_notes
    app.add_routes(routes.routes)
    app.add_routes(pages.routes)
    app.add_routes(fhir.routes)
    app.add_routes(visit_routes.routes)
    app.add_routes(attachment_routes.routes)
    add_openapi(app, openapi.RECORDS_PATHS, openapi.RECORDS_SCHEMAS)
    add_openapi(app, attachments_openapi.PATHS, {})
