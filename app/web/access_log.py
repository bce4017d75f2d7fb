"""Access log lines that never carry a token: no query strings, link tokens masked."""

from __future__ import annotations

import re
from collections.abc import Mapping

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

# Path segments after these prefixes are bearer secrets (patient join links, long and short
# `/j/<code>`, guest links, and the API under them); this also covers paths that match no route.
_SECRET_SEGMENT = re.compile(r"^(/(?:api/)?(?:join|j|guest|summary)/)[^/]+")
MASK = "***"


def loggable_path(path: str, match_info: Mapping[str, str] | None = None) -> str:
    """`path` with every secret in it masked; a route parameter named like `token` is one."""
    path = _SECRET_SEGMENT.sub(rf"\1{MASK}", path)
    hidden = {value for name, value in (match_info or {}).items() if "token" in name}
    if not hidden:
        return path
    return "/".join(MASK if segment in hidden else segment for segment in path.split("/"))


def request_path(request: web.BaseRequest) -> str:
    """The request's path as a log line may show it."""
    return loggable_path(request.path, getattr(request, "match_info", None))


class AccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        path = request_path(request)
        self.logger.info(
            '%s "%s %s" %s %.1fms',
            request.remote,
            request.method,
            path,
            response.status,
            time * 1000,
            # The same fields apart, for JSON log lines (OPENCONSULT_LOG_FORMAT=json).
            extra={
                "client": request.remote,
                "method": request.method,
                "path": path,
                "status": response.status,
                "duration_ms": round(time * 1000, 1),
            },
        )
