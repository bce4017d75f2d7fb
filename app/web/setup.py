"""The request plumbing every domain stands on, assembled on the app in one call."""

from __future__ import annotations

from aiohttp import web

from app.web.data import setup_data
from app.web.keys import OPENAPI_FRAGMENTS
from app.web.metrics import setup_metrics
from app.web.middlewares import add_security_headers, errors_middleware, session_middleware
from app.web.nodes import setup_nodes
from app.web.openapi import PLATFORM_PATHS, PLATFORM_SCHEMAS, Spec
from app.web.routes import routes
from app.web.templates import setup_templates


def setup(app: web.Application) -> None:
    """Data layer, this node, metrics, middlewares, headers, templates, platform routes (health,
    audit, OpenAPI)."""
    setup_data(app)
    setup_nodes(app)
    setup_metrics(app)  # first: its middleware times the others too
    app.middlewares.extend([errors_middleware, session_middleware])
    app.on_response_prepare.append(add_security_headers)
    setup_templates(app)
    app.add_routes(routes)
    add_openapi(app, PLATFORM_PATHS, PLATFORM_SCHEMAS)


def add_openapi(app: web.Application, paths: Spec, schemas: dict[str, Spec]) -> None:
    """Add a domain's fragment to the app's OpenAPI description."""
    app.setdefault(OPENAPI_FRAGMENTS, []).append((paths, schemas))
