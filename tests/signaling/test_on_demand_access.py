"""Who may use each on-demand route: every role, their own clinic against another clinic."""

from __future__ import annotations

from typing import Any

from app.core.models import Role
from tests.signaling.conftest import staff_headers
from tests.signaling.test_on_demand import clinic_with_queue, finish_check_in, open_queue, walk_in


async def _base(client: Any) -> str:
    return str(client.make_url("")).rstrip("/")


async def test_queue_settings_are_the_admins_own_clinics_only(client, db, factory) -> None:
    clinic, admin, providers, kind = await clinic_with_queue(db, factory, providers=1)
    _other, other_admin, other_providers, other_kind = await clinic_with_queue(
        db, factory, providers=1
    )
    base = await _base(client)
    headers = await staff_headers(base, admin)
    code = await open_queue(client, headers, kind, providers)
    scheduler = await staff_headers(base, await factory.staff(Role.SCHEDULER, clinic))
    provider = await staff_headers(base, providers[0])
    body = {
        "code": code,
        "enabled": True,
        "hours": [],
        "appointment_type_id": str(kind.id),
        "provider_ids": [str(providers[0].id)],
    }
    for who, expected in ((scheduler, 403), (provider, 403), ({}, 401)):
        assert (await client.get("/api/on-demand", headers=who)).status == expected
        assert (await client.put("/api/on-demand", json=body, headers=who)).status == expected
    # Another clinic's admin sees and sets their own clinic's queue, never this one.
    theirs = await staff_headers(base, other_admin)
    assert (await (await client.get("/api/on-demand", headers=theirs)).json())[
        "configured"
    ] is False
    taken = await client.put(
        "/api/on-demand",
        json=body
        | {
            "appointment_type_id": str(other_kind.id),
            "provider_ids": [str(other_providers[0].id)],
        },
        headers=theirs,
    )
    assert taken.status == 409  # the code is this clinic's
    for wrong in (
        {
            "code": "their-queue",
            "appointment_type_id": str(kind.id),
            "provider_ids": [str(other_providers[0].id)],
        },
        {
            "code": "their-queue",
            "appointment_type_id": str(other_kind.id),
            "provider_ids": [str(providers[0].id)],
        },
    ):
        resp = await client.put("/api/on-demand", json=body | wrong, headers=theirs)
        assert resp.status == 400, await resp.text()
    mine = await (await client.get("/api/on-demand", headers=headers)).json()
    assert mine["code"] == code and mine["provider_ids"] == [str(providers[0].id)]


async def test_taking_walk_ins_is_for_the_queues_providers(
    server, http_clients, sockets, db, factory
) -> None:
    clinic, admin, providers, kind = await clinic_with_queue(db, factory, providers=1)
    _other, other_admin, other_providers, other_kind = await clinic_with_queue(
        db, factory, providers=1
    )
    base = str(server.make_url("")).rstrip("/")
    http = http_clients()
    admin_headers = await staff_headers(base, admin)
    code = await open_queue(http, admin_headers, kind, providers)
    await open_queue(http, await staff_headers(base, other_admin), other_kind, other_providers)
    patient = http_clients()
    token = await walk_in(patient, code)
    await finish_check_in(patient, token)
    outsider = await factory.staff(Role.PROVIDER, clinic)  # same clinic, not in the walk-in queue
    for headers, expected in (
        (await staff_headers(base, await factory.staff(Role.SCHEDULER, clinic)), 403),
        (admin_headers, 403),
        (await staff_headers(base, outsider), 404),
        # Another clinic's provider takes from their own (empty) queue, never this one.
        (await staff_headers(base, other_providers[0]), 404),
    ):
        resp = await http.post("/api/on-demand/take", headers=headers)
        assert resp.status == expected, await resp.text()
    assert (await http.post("/api/on-demand/take")).status == 401
    # Nor can they admit the walk-in by its id over the queue socket.
    status = await (await patient.get(f"/api/join/{token}/status")).json()
    assert status["step"] == "waiting"
    row = None
    own = await sockets(base, "/clinic", await staff_headers(base, providers[0]))
    queue = await own.wait_for("queue", lambda d: any(p["on_demand"] for p in d["patients"]))
    row = queue["patients"][0]
    for account in (outsider, other_providers[0]):
        socket = await sockets(base, "/clinic", await staff_headers(base, account))
        refused = await socket.call("admit", {"appointment_id": row["appointment_id"]})
        assert refused["error"]["code"] == "not_found"
    taken = await http.post("/api/on-demand/take", headers=await staff_headers(base, providers[0]))
    assert taken.status == 200


async def test_reviews_and_merges_are_for_the_clinics_admins_and_schedulers(
    client, db, factory
) -> None:
    clinic, admin, providers, kind = await clinic_with_queue(db, factory, providers=1)
    other = await factory.clinic()
    base = await _base(client)
    admin_headers = await staff_headers(base, admin)
    code = await open_queue(client, admin_headers, kind, providers)
    await walk_in(client, code)
    await walk_in(client, code, email="ada.other@mail.example")
    reviews = await (await client.get("/api/patient-reviews", headers=admin_headers)).json()
    flagged, known = reviews[0]["patient"]["id"], reviews[0]["candidates"][0]["id"]
    accounts = {
        "provider": await factory.staff(Role.PROVIDER, clinic),
        "other scheduler": await factory.staff(Role.SCHEDULER, other),
        "other admin": await factory.staff(Role.ADMIN, other),
    }
    for name, account in accounts.items():
        headers = await staff_headers(base, account)
        listed = await client.get("/api/patient-reviews", headers=headers)
        merge = await client.post(
            f"/api/patients/{flagged}/merge", json={"into": known}, headers=headers
        )
        keep = await client.post(f"/api/patients/{flagged}/keep-separate", headers=headers)
        if name == "provider":
            assert (listed.status, merge.status, keep.status) == (403, 403, 403)
        else:
            assert listed.status == 200 and await listed.json() == []
            assert (merge.status, keep.status) == (404, 404), name
    for path in ("/api/patient-reviews",):
        assert (await client.get(path)).status == 401
    assert (await client.post(f"/api/patients/{flagged}/merge", json={"into": known})).status == 401
    scheduler = await staff_headers(base, await factory.staff(Role.SCHEDULER, clinic))
    keep = await client.post(f"/api/patients/{flagged}/keep-separate", headers=scheduler)
    assert keep.status == 200
    assert await (await client.get("/api/patient-reviews", headers=scheduler)).json() == []
