"""Attachments over HTTP, for the patient's routes and the staff's alike: reading one uploaded
file within its size limit, and serving stored bytes so no browser runs or keeps them."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import BodyPartReader, web

from app.attachments.models import Attachment
from app.core.errors import DomainError, InvalidInput

FIELD = "file"
CHUNK = 64 * 1024
#: Inline only for photos (the page's thumbnails): a PDF from this origin is always a download.
INLINE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
#: The served file may run nothing, load nothing, and be framed by nobody.
FILE_CSP = "default-src 'none'; img-src 'self'; style-src 'none'; sandbox; frame-ancestors 'none'"


class FileTooLarge(DomainError):
    status = 413
    code = "file_too_large"


def _too_large(max_bytes: int) -> FileTooLarge:
    return FileTooLarge(
        f"This file is larger than {max_bytes // (1024 * 1024) or 1} MB; "
        "please send a smaller one.",
        fields={FIELD: "too large"},
        detail={"max_bytes": max_bytes},
    )


async def read_upload(request: web.Request, max_bytes: int) -> tuple[str | None, bytes]:
    """The one file of a multipart/form-data body (field `file`), its name as sent and bytes.

    Read in chunks and refused as soon as it passes `max_bytes`, whatever the body claims.
    """
    if not request.content_type.startswith("multipart/form-data"):
        raise InvalidInput(
            "Send the file as multipart/form-data in a field named 'file'.",
            fields={FIELD: "missing"},
        )
    declared = request.content_length
    if declared is not None and declared > max_bytes + CHUNK:
        raise _too_large(max_bytes)
    try:
        reader = await request.multipart()
        part = await reader.next()
        while part is not None and not (
            isinstance(part, BodyPartReader) and part.name == FIELD and part.filename is not None
        ):
            if isinstance(part, BodyPartReader):
                await part.release()
            part = await reader.next()
        if part is None or not isinstance(part, BodyPartReader):
            raise InvalidInput("No file was sent.", fields={FIELD: "missing"})
        data = bytearray()
        while chunk := await part.read_chunk(CHUNK):
            data += chunk
            if len(data) > max_bytes:
                raise _too_large(max_bytes)
        filename = part.filename
    except (ValueError, AssertionError, RuntimeError) as exc:
        raise InvalidInput(
            "The upload could not be read as multipart/form-data.", fields={FIELD: "unreadable"}
        ) from exc
    if not data:
        raise InvalidInput("The file is empty.", fields={FIELD: "empty"})
    return filename, bytes(data)


def wants_inline(request: web.Request, attachment: Attachment) -> bool:
    return request.query.get("disposition") == "inline" and attachment.content_type in INLINE_TYPES


def file_response(attachment: Attachment, data: bytes, *, inline: bool) -> web.Response:
    """The stored bytes under their own type, as a download unless an inline photo."""
    ascii_name = "".join(
        ch if ch.isascii() and (ch.isalnum() or ch in " ._-") else "_" for ch in attachment.title
    )
    disposition = "inline" if inline else "attachment"
    return web.Response(
        body=data,
        headers={
            "Content-Type": attachment.content_type,
            "Content-Disposition": (
                f'{disposition}; filename="{ascii_name}"; '
                f"filename*=UTF-8''{quote(attachment.title, safe='')}"
            ),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store, private",
            "Content-Security-Policy": FILE_CSP,
            "Cross-Origin-Resource-Policy": "same-origin",
        },
    )
