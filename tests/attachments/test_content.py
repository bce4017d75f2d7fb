"""The content check alone: damaged or crafted bytes of every kind are a 415, never a crash;
an upright photo stays upright once its EXIF orientation is applied and dropped."""

from __future__ import annotations

import io

import pytest
from PIL import ExifTags, Image

from app.attachments.content import UnsupportedFile, check
from tests.attachments.test_attachments_api import dicom, gps_jpeg, pdf, png

MAX_PIXELS = 40_000_000


@pytest.mark.parametrize(
    "data",
    [
        gps_jpeg()[:300],  # a photo cut short
        png()[:40],
        b"\x89PNG\r\n\x1a\n" + b"\0" * 64,  # a PNG signature and nothing else
        b"\0" * 128 + b"DICM" + b"\xff" * 40,  # a DICOM preamble, then garbage
        dicom()[:140],
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << >>\n%%EOF",
        pdf()[:60],
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",  # a kind not taken
        b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
        b"PK\x03\x04" + b"\0" * 30,  # a zip (or an office document)
    ],
)
def test_damaged_or_other_files_are_refused_cleanly(data: bytes) -> None:
    with pytest.raises(UnsupportedFile) as refused:
        check(data, max_pixels=MAX_PIXELS)
    assert refused.value.status == 415 and refused.value.code == "unsupported_media_type"


def test_the_camera_s_orientation_is_applied_before_the_exif_goes() -> None:
    wide = Image.new("RGB", (60, 20), (10, 200, 10))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # "rotate 90° clockwise to view"
    out = io.BytesIO()
    wide.save(out, "JPEG", exif=exif)
    checked = check(out.getvalue(), max_pixels=MAX_PIXELS)
    stored = Image.open(io.BytesIO(checked.data))
    assert stored.size == (20, 60) and len(stored.getexif()) == 0
    assert checked.details == {"width": 20, "height": 60}
