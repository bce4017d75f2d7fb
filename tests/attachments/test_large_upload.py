"""With the default limits, a photo larger than the API's JSON body limit goes through: uploads
are read in chunks against their own limit (10 MB), not the 1 MB body limit."""

from __future__ import annotations

import io
import os
from datetime import timedelta

from PIL import Image

from app.core.db import Database
from tests.attachments.test_attachments_api import form, sign_in_patient
from tests.records.conftest import Ward
from tests.records.visits import hold_visit


async def test_a_three_megabyte_photo_is_taken(ward: Ward, db: Database) -> None:
    held = await hold_visit(db, ward, started_ago=timedelta(minutes=3))
    base = await sign_in_patient(ward, held.token)
    noise = Image.frombytes("RGB", (1100, 1000), os.urandom(1100 * 1000 * 3))
    out = io.BytesIO()
    noise.save(out, "PNG")
    data = out.getvalue()
    assert 2 * 1024 * 1024 < len(data) < 10 * 1024 * 1024
    resp = await ward.client.post(f"{base}/attachments", data=form(data, "big.png"))
    assert resp.status == 201, await resp.text()
    added = await resp.json()
    assert added["details"] == {"width": 1100, "height": 1000}
    served = await (await ward.client.get(added["content_url"])).read()
    assert Image.open(io.BytesIO(served)).tobytes() == noise.tobytes()
