"""The one application factory: settings, then the data layer and web plumbing, then each domain."""

from __future__ import annotations

from aiohttp import web

from app.accounts.setup import setup as setup_accounts
from app.core.config import Settings
from app.intake.setup import setup as setup_intake
from app.records.setup import setup as setup_records
from app.web.keys import SETTINGS
from app.web.middlewares import name_the_server
from app.web.setup import setup as setup_web
from scheduling.setup import setup as setup_scheduling
from signaling.setup import setup as setup_signaling

DOMAINS = (setup_accounts, setup_scheduling, setup_intake, setup_signaling, setup_records)


def create_app(settings: Settings) -> web.Application:
    """Build the app; resources open on startup and close on cleanup. Domains go in any order."""
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    name_the_server()
    setup_web(app)
    for setup_domain in DOMAINS:
        setup_domain(app)
    return app
