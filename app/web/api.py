"""Small helpers every JSON handler uses: read a body into a model, answer with a model."""

from __future__ import annotations

import json
import uuid
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from app.core import text
from app.core.errors import InvalidInput, NotFound

M = TypeVar("M", bound=BaseModel)


def field_errors(exc: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"]) or "body"
        fields.setdefault(name, err["msg"])
    return fields


def text_errors(data: Any) -> dict[str, str]:
    """Each field (path as in `field_errors`) whose text holds a NUL or a lone surrogate.

    Walked with a stack rather than recursion: the JSON parser accepts nesting deeper than a
    recursive walk would survive.
    """
    fields: dict[str, str] = {}
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            why = text.problem(value)
            if why is not None:
                fields.setdefault(path or "body", why)
        elif isinstance(value, dict):
            for key, item in value.items():
                why = text.problem(str(key))
                if why is not None:
                    fields.setdefault(path or "body", f"a field name {why}")
                stack.append((f"{path}.{key}" if path else str(key), item))
        elif isinstance(value, list | tuple):
            stack.extend((f"{path}.{i}" if path else str(i), item) for i, item in enumerate(value))
    return fields


def parse_model(model: type[M], data: Any) -> M:
    """Validate `data` (a JSON body, a query, an event's payload) against `model`; a 400 naming
    each bad field otherwise. Every text of every request passes here, so the rule for what
    counts as text (`app.core.text`) is kept here, before anything can store it."""
    fields = text_errors(data)
    if not fields:
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
    except RecursionError:
        raise InvalidInput(
            "The body is nested too deeply to read.", fields={"body": "nested too deeply"}
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
