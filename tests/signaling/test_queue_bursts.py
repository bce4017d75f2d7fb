"""Changes in quick succession: the places and the staff queue are sent once more after a send in
flight, never left stale (a burst of admits, a burst of waiting patients connecting)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.signaling.conftest import cookie_header, staff_headers
from tests.signaling.test_on_demand import clinic_with_queue, finish_check_in, open_queue, walk_in
from tests.support.waiting import wait_for

WALK_INS = 6


def latest(listener: Any, event: str) -> Any:
    found = [data for name, data in listener.events if name == event]
    return found[-1] if found else None


async def settle(check: Any, what: str) -> None:
    """Wait until `check()` holds (a loaded machine sends late, never wrongly)."""
    await wait_for(check, 30, what)


async def test_two_admits_at_once_leave_every_page_right(
    server, http_clients, sockets, db, factory
) -> None:
    _clinic, admin, providers, kind = await clinic_with_queue(db, factory)
    base = str(server.make_url("")).rstrip("/")
    http = http_clients()
    code = await open_queue(http, await staff_headers(base, admin), kind, providers)
    # The walk-ins arrive one after the other and all connect at once (a burst of changes).
    cookies = []
    for n in range(WALK_INS):
        patient_http = http_clients()
        token = await walk_in(
            patient_http, code, given_name=f"Walker{n}", email=f"w{n}@mail.example"
        )
        await finish_check_in(patient_http, token)
        cookies.append(cookie_header(patient_http))
    queues = [await sockets(base, "/clinic", await staff_headers(base, p)) for p in providers]
    pages = await asyncio.gather(*(sockets(base, "/waiting", c) for c in cookies))

    def rows(queue: Any) -> list[dict[str, Any]]:
        shown = latest(queue, "queue")
        return shown["patients"] if shown else []

    def all_waiting() -> bool:
        return all(
            [r["status"] for r in rows(q)] == ["waiting"] * WALK_INS for q in queues
        ) and all((latest(p, "place") or {}).get("position") == n for n, p in enumerate(pages, 1))

    await settle(all_waiting, "every walk-in waiting, in arrival order")
    order = [r["appointment_id"] for r in rows(queues[0])]
    assert [r["position"] for r in rows(queues[0])] == list(range(1, WALK_INS + 1))

    # Both providers admit the first two walk-ins at the same moment.
    answers = await asyncio.gather(
        queues[0].call("admit", {"appointment_id": order[0]}),
        queues[1].call("admit", {"appointment_id": order[1]}),
    )
    assert all("visit_id" in a for a in answers), answers

    # Each provider's queue keeps the walk-in they admitted (in visit); both show the others.
    def staff_settled() -> bool:
        mine = [{r["appointment_id"]: r["status"] for r in rows(q)} for q in queues]
        return (
            mine[0].get(order[0]) == "in visit"
            and mine[1].get(order[1]) == "in visit"
            and all([m.get(a) for a in order[2:]] == ["waiting"] * (WALK_INS - 2) for m in mine)
        )

    def remaining(queue: Any) -> list[dict[str, Any]]:
        return [r for r in rows(queue) if r["status"] == "waiting"]

    await settle(staff_settled, "both admits in the staff queues")
    await settle(
        lambda: (
            all(
                [(r["appointment_id"], r["position"]) for r in remaining(q)]
                == [(a, n) for n, a in enumerate(order[2:], 1)]
                for q in queues
            )
            and [(latest(p, "place") or {}).get("position") for p in pages[2:]]
            == list(range(1, WALK_INS - 1))
        ),
        "every remaining walk-in one place up, two places for two admits",
    )
    # What the pages show last is right, with an expected wait.
    for page, position in zip(pages[2:], range(1, WALK_INS - 1), strict=True):
        assert latest(page, "place")["position"] == position
        assert latest(page, "place")["expected_wait_minutes"] >= 0
