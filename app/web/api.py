"""Small helpers every JSON handler uses: read a body into a model, answer with a model."""

from __future__ import annotations

import json
import uuid
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from app.core.errors import InvalidInput, NotFound

M = TypeVar("M", bound=BaseModel)


def field_errors(exc: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"]) or "body"
        fields.setdefault(name, err["msg"])
    return fields


def parse_model(model: type[M], data: Any) -> M:
    """Validate `data` against `model`; a 400 naming each bad field otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = field_errors(exc)
        names = ", ".join(sorted(fields))
        raise InvalidInput(f"Please correct: {names}.", fields=fields) from None


async def read_json(request: web.Request, model: type[M]) -> M:
    """The request body as `model`; malformed JSON or a wrong field is a 400."""
    if request.content_type != "application/json":
        raise InvalidInput("Send the body as application/json.", fields={"body": "not JSON"})
    raw = await request.read()
    try:
        data = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"The body is not valid JSON: {exc}", fields={"body": "malformed JSON"}
        ) from None
    if not isinstance(data, dict):
        raise InvalidInput("The body must be a JSON object.", fields={"body": "not an object"})
    return parse_model(model, data)


def path_uuid(request: web.Request, name: str) -> uuid.UUID:
    """A UUID from the path; anything else cannot name an object, so it is a 404."""
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise NotFound("No such object.") from None


def model_response(model: BaseModel | list[BaseModel], *, status: int = 200) -> web.Response:
    if isinstance(model, list):
        body = "[" + ",".join(m.model_dump_json() for m in model) + "]"
    else:
        body = model.model_dump_json()
    return web.Response(text=body, status=status, content_type="application/json")
