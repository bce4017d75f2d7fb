"""One rule for all text: a NUL or a lone UTF-16 surrogate is refused (400, by field) before
anything is stored; JSON nested too deep for the parser is a 400 too, never a 500."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from app.core.models import Role
from tests.conftest import Factory, bearer_login
from tests.records.conftest import put_in_care

# What a client sends as JSON "x\ud83d" (half of an emoji) and "x\u0000y".
BROKEN_TEXT = {"lone surrogate": "x\ud83d", "NUL": "x\x00y"}
# 20,000 levels of arrays: far deeper than the JSON parser's recursion limit.
DEEP_JSON = "[" * 20_000 + "]" * 20_000


async def _refused(resp: Any, field: str) -> None:
    """A 400 that names `field`."""
    assert resp.status == 400, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_input"
    assert field in error["fields"], error


async def test_notes_refuse_broken_text_and_keep_what_was_there(
    client: TestClient, factory: Factory
) -> None:
    clinic = await factory.clinic()
    patient = await factory.patient(clinic)
    provider = await factory.staff(Role.PROVIDER, clinic)
    await put_in_care(factory.db, clinic, patient, provider, days_ago=30)
    headers = await bearer_login(client, provider)
    notes_url = f"/api/patients/{patient.id}/notes"

    for text in BROKEN_TEXT.values():
        resp = await client.post(notes_url, json={"sections": {"plan": text}}, headers=headers)
        await _refused(resp, "sections.plan")
    assert await (await client.get(notes_url, headers=headers)).json() == []

    resp = await client.post(notes_url, json={"sections": {"plan": "Rest."}}, headers=headers)
    note = await resp.json()
    for text in BROKEN_TEXT.values():
        resp = await client.put(
            f"/api/notes/{note['id']}",
            json={"version": note["version"], "sections": {"subjective": text}},
            headers=headers,
        )
        await _refused(resp, "sections.subjective")
    current = await (await client.get(f"/api/notes/{note['id']}", headers=headers)).json()
    assert current["version"] == note["version"] and current["sections"]["subjective"] == ""

    resp = await client.post(
        f"/api/notes/{note['id']}/sign", json={"version": note["version"]}, headers=headers
    )
    assert resp.status == 200, await resp.text()
    for text in BROKEN_TEXT.values():
        resp = await client.post(
            f"/api/notes/{note['id']}/addenda",
            json={"reason": "Lab result", "text": text},
            headers=headers,
        )
        await _refused(resp, "text")
    addenda = await client.get(f"/api/notes/{note['id']}/addenda", headers=headers)
    assert await addenda.json() == []
    # The record still opens for everyone.
    assert (await client.get(f"/api/patients/{patient.id}/record", headers=headers)).status == 200


async def test_patient_names_and_search_refuse_broken_text(
    client: TestClient, factory: Factory
) -> None:
    headers = await bearer_login(client, await factory.staff(Role.SCHEDULER))
    for text in BROKEN_TEXT.values():
        patient = {"given_name": text, "family_name": "Garcia", "birth_date": "1984-03-12"}
        await _refused(
            await client.post("/api/patients", json=patient, headers=headers), "given_name"
        )
    assert await (await client.get("/api/patients", headers=headers)).json() == []
    # Query parameters too. (A lone surrogate cannot arrive in a URL: its UTF-8 bytes are not
    # valid UTF-8, and the URL parser reads them as U+FFFD.)
    await _refused(await client.get("/api/patients?q=x%00y", headers=headers), "q")
    assert (await client.get("/api/patients?q=x%ED%A0%BD", headers=headers)).status == 200


async def test_deeply_nested_json_is_a_400(client: TestClient, factory: Factory) -> None:
    json_headers = {"Content-Type": "application/json"}
    resp = await client.post("/api/auth/login", data=DEEP_JSON, headers=json_headers)
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["fields"] == {"body": "nested too deeply"}

    clinic = await factory.clinic()
    patient = await factory.patient(clinic)
    headers = await bearer_login(client, await factory.staff(Role.PROVIDER, clinic))
    resp = await client.post(
        f"/api/patients/{patient.id}/notes", data=DEEP_JSON, headers=headers | json_headers
    )
    assert resp.status == 400, await resp.text()
    # An object nested just within the parser's reach is walked without recursion, too.
    shallow_enough = '{"sections": ' + "[" * 900 + "]" * 900 + "}"
    resp = await client.post(
        f"/api/patients/{patient.id}/notes", data=shallow_enough, headers=headers | json_headers
    )
    await _refused(resp, "sections")
