"""Access log lines that never carry a token: no query strings, link tokens masked."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

# Path segments after these prefixes are bearer secrets (patient join and guest links).
_SECRET_SEGMENT = re.compile(r"^(/(?:join|guest|summary)/)[^/]+")


def loggable_path(path: str) -> str:
    return _SECRET_SEGMENT.sub(r"\1***", path)


class AccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %.1fms',
            request.remote,
            request.method,
            loggable_path(request.path),
            response.status,
            time * 1000,
        )
