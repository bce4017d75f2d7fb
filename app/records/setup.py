"""How the patient record plugs into the app: its key ring, routes, pages and FHIR export."""

from __future__ import annotations

from aiohttp import web

from app.records import fhir, openapi, pages, routes, visit_routes
from app.records.crypto import Keyring
from app.records.keys import NOTE_KEYRING
from app.web.keys import SETTINGS
from app.web.setup import add_openapi


def setup(app: web.Application) -> None:
    app[NOTE_KEYRING] = Keyring.from_settings(app[SETTINGS])
    app.add_routes(routes.routes)
    app.add_routes(pages.routes)
    app.add_routes(fhir.routes)
    app.add_routes(visit_routes.routes)
    add_openapi(app, openapi.RECORDS_PATHS, openapi.RECORDS_SCHEMAS)
