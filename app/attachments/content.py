"""What a file is, by its bytes (never its name): a photo, a PDF or a DICOM file, else refused.

Photos are decoded and encoded again from their pixels alone, so nothing of the upload's
metadata (EXIF with its GPS position, XMP, comments, colour-profile text) reaches the store;
the camera's orientation is applied first so the picture stays upright. PDFs and DICOM files are
kept as sent, once a parser has read them; DICOM is listed by its header, never rendered.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass, field
from typing import Literal

import pydicom
from PIL import Image, ImageOps, UnidentifiedImageError
from pypdf import PdfReader

from app.core.errors import DomainError

log = logging.getLogger(__name__)
Kind = Literal["image", "pdf", "dicom"]

#: Pillow formats accepted, with the type and extension of what is stored.
IMAGE_FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}
PDF_TYPE = "application/pdf"
DICOM_TYPE = "application/dicom"
#: The DICOM header fields listed beside the note (keyword → label).
DICOM_FIELDS = {
    "Modality": "Modality",
    "StudyDate": "Study date",
    "StudyDescription": "Study",
    "SeriesDescription": "Series",
    "BodyPartExamined": "Body part",
    "InstitutionName": "Institution",
    "Manufacturer": "Manufacturer",
    "Rows": "Rows",
    "Columns": "Columns",
}
ACCEPTED = "a photo (JPEG, PNG or WebP), a PDF document or a DICOM file"


class UnsupportedFile(DomainError):
    """The bytes are none of the kinds a visit takes, or do not read as what they claim."""

    status = 415
    code = "unsupported_media_type"


class ImageTooLarge(DomainError):
    """A photo with more pixels than allowed: refused before its pixels are decoded."""

    status = 413
    code = "image_too_large"


@dataclass(frozen=True)
class Checked:
    """A file that passed: what is stored and served, and what the check read from it."""

    kind: Kind
    content_type: str
    extension: str
    data: bytes
    details: dict[str, str | int] = field(default_factory=dict)


def check(data: bytes, *, max_pixels: int) -> Checked:
    """Read `data` as one of the accepted kinds, or raise `UnsupportedFile` (415)."""
    if len(data) >= 132 and data[128:132] == b"DICM":
        return _dicom(data)
    if data.startswith(b"%PDF-"):
        return _pdf(data)
    return _image(data, max_pixels)


def _refuse(why: str) -> UnsupportedFile:
    return UnsupportedFile(
        f"This file is not {ACCEPTED}{why}.",
        fields={"file": "unsupported type"},
        detail={"accepted": [*(t for t, _ in IMAGE_FORMATS.values()), PDF_TYPE, DICOM_TYPE]},
    )


def _image(data: bytes, max_pixels: int) -> Checked:
    try:
        with warnings.catch_warnings():
            # Our own pixel limit applies below, before anything is decoded.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            source = Image.open(io.BytesIO(data), formats=list(IMAGE_FORMATS))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
        raise _refuse("") from None
    except Exception:  # a parser's other errors on crafted bytes: still the sender's file
        raise _refuse("") from None
    with source:
        width, height = source.size
        if width * height > max_pixels:
            raise ImageTooLarge(
                f"This photo has too many pixels ({width} by {height}); please send a smaller one.",
                fields={"file": "too many pixels"},
                detail={"max_pixels": max_pixels},
            )
        fmt = source.format or ""
        content_type, extension = IMAGE_FORMATS[fmt]
        try:
            source.seek(0)  # the first frame of an animation
            upright = ImageOps.exif_transpose(source)
            pixels = _plain_pixels(upright, fmt)
        except Exception:  # decoders raise many kinds of error on a damaged or crafted file
            raise _refuse(" (the picture could not be read)") from None
    out = io.BytesIO()
    if fmt == "JPEG":
        pixels.save(out, "JPEG", quality=90, optimize=True)
    elif fmt == "PNG":
        pixels.save(out, "PNG", optimize=True)
    else:
        pixels.save(out, "WEBP", quality=90)
    return Checked(
        "image",
        content_type,
        extension,
        out.getvalue(),
        {"width": pixels.width, "height": pixels.height},
    )


def _plain_pixels(image: Image.Image, fmt: str) -> Image.Image:
    """A new image holding only the pixels: no EXIF, XMP, text chunks or ICC profile."""
    wanted = "RGB" if fmt == "JPEG" else ("RGBA" if _has_alpha(image) else "RGB")
    if image.mode == "L" and fmt in ("JPEG", "PNG"):
        wanted = "L"
    converted = image.convert(wanted)
    plain = Image.new(converted.mode, converted.size)
    plain.paste(converted)
    return plain


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )


def _pdf(data: bytes) -> Checked:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise _refuse(" (password-protected PDFs cannot be checked)")
        pages = len(reader.pages)
    except UnsupportedFile:
        raise
    except Exception:  # pypdf's errors on a crafted file vary
        raise _refuse(" (the PDF could not be read)") from None
    if pages < 1:
        raise _refuse(" (the PDF has no pages)")
    return Checked("pdf", PDF_TYPE, "pdf", data, {"pages": pages})


def _dicom(data: bytes) -> Checked:
    try:
        # pydicom reads on through damage with a warning: here a damaged header is refused.
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            dataset = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
            meta = dataset.file_meta
            complete = bool(meta.get("TransferSyntaxUID")) and bool(
                meta.get("MediaStorageSOPClassUID")
            )
    except Exception:  # pydicom's errors on a crafted header vary
        raise _refuse(" (the DICOM header could not be read)") from None
    if not complete:
        raise _refuse(" (the DICOM file has no complete file meta header)")
    details: dict[str, str | int] = {}
    for keyword in DICOM_FIELDS:
        try:
            value = dataset.get(keyword)
        except Exception:  # a field that does not decode is left out, the rest still listed
            log.info("DICOM field %s does not decode; left out", keyword)
            continue
        if value is None or value == "":
            continue
        details[keyword] = value if isinstance(value, int) else str(value)[:200]
    return Checked("dicom", DICOM_TYPE, "dcm", data, details)
