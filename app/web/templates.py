"""Server-rendered pages: Jinja templates with the signed-in staff member and CSRF token."""

from __future__ import annotations

import aiohttp_jinja2
import jinja2
from aiohttp import web

from app.web.csrf import CSRF_FIELD, csrf_token
from app.web.identity import optional_staff
from frontend import STATIC_DIR, TEMPLATES_DIR


async def _template_context(request: web.Request) -> dict[str, object]:
    staff = await optional_staff(request)
    return {
        "current_staff": staff,
        "csrf_token": csrf_token(request, staff) if staff else "",
        "csrf_field": CSRF_FIELD,
    }


def setup_templates(app: web.Application) -> None:
    """Templates from frontend/templates (autoescaped) and static files under /static."""
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(default=True),
        context_processors=[_template_context],
    )
    app.router.add_static("/static", STATIC_DIR, name="static")
