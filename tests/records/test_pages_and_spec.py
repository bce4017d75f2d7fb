"""Record and editor pages, concurrent saves, the OpenAPI description, same-origin checks."""

from __future__ import annotations

import asyncio
import re

from aiohttp.test_utils import TestClient

from tests.conftest import cookie_login
from tests.records.conftest import Ward


async def test_concurrent_saves_of_one_version_let_exactly_one_win(ward: Ward) -> None:
    note = await ward.create_note()
    answers = await asyncio.gather(
        *(ward.save(note, {"plan": f"tab {i}"}, version=1) for i in range(8))
    )
    statuses = sorted(r.status for r in answers)
    assert statuses == [200] + [409] * 7
    [winner] = [await r.json() for r in answers if r.status == 200]
    resp = await ward.client.get(f"/api/notes/{note['id']}", headers=ward.author.headers)
    stored = await resp.json()
    assert stored["version"] == 2 and stored["sections"] == winner["sections"]


async def test_record_page_shows_demographics_notes_and_addenda(ward: Ward) -> None:
    note = await ward.signed_note({"assessment": "Migraine <with aura>"})
    await ward.client.post(
        f"/api/notes/{note['id']}/addenda",
        json={"reason": "Imaging", "text": "MRI normal"},
        headers=ward.author.headers,
    )
    draft = await ward.create_note({"plan": "unsigned idea"})
    await ward.break_glass(ward.admin)
    resp = await ward.client.get(f"/records/patients/{ward.patient.id}", headers=ward.admin.headers)
    assert resp.status == 200
    page = await resp.text()
    assert ward.patient.family_name in page and "1984-03-12" in page
    assert "Migraine &lt;with aura&gt;" in page
    assert "MRI normal" in page and "Reason: Imaging" in page
    assert draft["id"] not in page and "unsigned idea" not in page  # an admin sees no drafts
    assert not re.search(r"<script(?![^>]*\bsrc=)", page), "no inline scripts (CSP)"

    resp = await ward.client.get(f"/records/notes/{draft['id']}", headers=ward.author.headers)
    page = await resp.text()
    assert resp.status == 200 and "unsigned idea" in page
    assert 'src="/static/js/note_editor.js"' in page
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


async def test_every_records_api_route_is_described(client: TestClient) -> None:
    spec = await (await client.get("/api/openapi.json")).json()
    described = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    for resource in client.app.router.resources():
        info = resource.get_info()
        path = info.get("formatter") or info.get("path", "")
        if not path.startswith("/api/"):
            continue
        for route in resource:
            if route.method in {"HEAD", "OPTIONS"}:
                continue
            assert (path, route.method.lower()) in described, f"{route.method} {path}"
    for name in ("NotePublic", "NoteSave", "NoteSections", "PatientRecord", "AddendumPublic"):
        assert name in spec["components"]["schemas"]
    assert "$defs" not in str(spec["components"]["schemas"]["PatientRecord"])


async def test_same_origin_posts_with_origin_null(ward: Ward) -> None:
    """Referrer-Policy: no-referrer makes Chromium send Origin: null on same-origin writes."""
    client = ward.client
    csrf = await cookie_login(client, ward.author.account)
    note = await ward.create_note()
    base = {"X-CSRF-Token": csrf, "Origin": "null"}
    body = {"version": note["version"], "sections": {"plan": "via cookie"}}
    resp = await client.put(
        f"/api/notes/{note['id']}", json=body, headers={**base, "Sec-Fetch-Site": "cross-site"}
    )
    assert resp.status == 403
    resp = await client.put(f"/api/notes/{note['id']}", json=body, headers=base)
    assert resp.status == 403
    resp = await client.put(
        f"/api/notes/{note['id']}", json=body, headers={**base, "Sec-Fetch-Site": "same-origin"}
    )
    assert resp.status == 200, await resp.text()
