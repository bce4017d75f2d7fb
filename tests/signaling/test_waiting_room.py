"""The live waiting room over Socket.IO: place, messages, admit, presence, release, access."""

from __future__ import annotations

from datetime import timedelta

import pytest
import socketio
from aiohttp.test_utils import TestClient

from app.main import create_app
from tests.signaling.conftest import WaitingFactory, check_in, cookie_header, staff_headers


@pytest.fixture
async def server(aiohttp_server, settings_factory):
    app = create_app(settings_factory(waiting_grace_seconds=1.0, background_tasks=False))
    return await aiohttp_server(app, host="127.0.0.1")


@pytest.fixture
async def http(server):
    client = TestClient(server)
    yield client
    # client.close() would stop the shared server too; close only the client's session.
    await client.session.close()


def _row(queue, appointment_id):
    return next(p for p in queue["patients"] if p["appointment_id"] == str(appointment_id))


def _status_is(appointment_id, status):
    return lambda q: any(
        p["appointment_id"] == str(appointment_id) and p["status"] == status for p in q["patients"]
    )


async def test_check_in_place_message_and_admit(server, http, waiting: WaitingFactory, sockets):
    v = await waiting.visitable()
    url = str(server.make_url("/"))
    provider = await sockets(url, "/clinic", await staff_headers(url.rstrip("/"), v.provider))
    first = await provider.wait_for("queue")
    assert _row(first, v.appointment.id)["status"] == "not arrived"

    await check_in(http, v.token)
    patient = await sockets(url, "/waiting", cookie_header(http))
    queue = await provider.wait_for("queue", _status_is(v.appointment.id, "waiting"))
    row = _row(queue, v.appointment.id)
    assert row["position"] == 1 and row["device_check"]["camera"] == "ok"
    place = await patient.wait_for("place")
    assert place["position"] == 1 and place["expected_wait_minutes"] >= 0

    ack = await provider.call(
        "message", {"appointment_id": str(v.appointment.id), "text": "Running 10 minutes late"}
    )
    assert ack["ok"] is True
    message = await patient.wait_for("message")
    assert (
        message["text"] == "Running 10 minutes late"
        and message["from"] == v.provider.user.full_name
    )

    admitted = await provider.call("admit", {"appointment_id": str(v.appointment.id)})
    assert admitted["url"] == f"/visit/{admitted['visit_id']}"
    to_patient = await patient.wait_for("admitted")
    assert to_patient["visit_id"] == admitted["visit_id"]
    await provider.wait_for("queue", _status_is(v.appointment.id, "in visit"))

    page = await http.get(admitted["url"])
    assert page.status == 200 and "Visit in progress" in await page.text()


async def test_second_patient_is_second_and_moves_up_after_the_admit(
    server, http, waiting: WaitingFactory, sockets
):
    clinic, provider_account, _, kind = await waiting.clinic_day()
    _, first_appt, first_token = await waiting.appointment(clinic, provider_account, kind)
    _, _, second_token = await waiting.appointment(
        clinic, provider_account, kind, starts_in=timedelta(minutes=26), given="Omar"
    )
    url = str(server.make_url("/"))
    provider = await sockets(url, "/clinic", await staff_headers(url.rstrip("/"), provider_account))
    await check_in(http, first_token)
    first = await sockets(url, "/waiting", cookie_header(http))
    http.session.cookie_jar.clear()
    await check_in(http, second_token)
    second = await sockets(url, "/waiting", cookie_header(http))
    assert (await second.wait_for("place", lambda p: p["position"] == 2))["position"] == 2
    await provider.call("admit", {"appointment_id": str(first_appt.id)})
    await first.wait_for("admitted")
    moved = await second.wait_for("place", lambda p: p["position"] == 1)
    assert moved["position"] == 1


async def test_a_reload_keeps_the_place_and_shows_away_meanwhile(
    server, http, waiting: WaitingFactory, sockets
):
    v = await waiting.visitable()
    url = str(server.make_url("/"))
    provider = await sockets(url, "/clinic", await staff_headers(url.rstrip("/"), v.provider))
    await check_in(http, v.token)
    patient = await sockets(url, "/waiting", cookie_header(http))
    await provider.wait_for("queue", _status_is(v.appointment.id, "waiting"))
    await patient.client.disconnect()
    await provider.wait_for("queue", _status_is(v.appointment.id, "away"))
    again = await sockets(url, "/waiting", cookie_header(http))
    await provider.wait_for("queue", _status_is(v.appointment.id, "waiting"))
    assert (await again.wait_for("place"))["position"] == 1


async def test_away_longer_than_the_grace_period_loses_the_place(
    server, http, waiting: WaitingFactory, sockets
):
    v = await waiting.visitable()
    url = str(server.make_url("/"))
    provider = await sockets(url, "/clinic", await staff_headers(url.rstrip("/"), v.provider))
    await check_in(http, v.token)
    patient = await sockets(url, "/waiting", cookie_header(http))
    await provider.wait_for("queue", _status_is(v.appointment.id, "waiting"))
    await patient.client.disconnect()
    # grace is 1 s in this app
    await provider.wait_for("queue", _status_is(v.appointment.id, "checking in"), within=10)


async def test_a_cancel_while_waiting_releases_the_patient(
    server, http, waiting: WaitingFactory, sockets
):
    v = await waiting.visitable()
    url = str(server.make_url("/"))
    await check_in(http, v.token)
    patient = await sockets(url, "/waiting", cookie_header(http))
    await patient.wait_for("place")
    headers = await staff_headers(url.rstrip("/"), v.scheduler)
    resp = await http.post(
        f"/api/appointments/{v.appointment.id}/cancel",
        json={"reason": "Provider ill"},
        headers=headers,
    )
    assert resp.status == 200, await resp.text()
    released = await patient.wait_for("released")
    assert released["reason"] == "cancelled" and "cancelled" in released["message"]


async def test_schedulers_watch_read_only_and_other_clinics_are_refused(
    server, http, waiting: WaitingFactory, sockets
):
    v = await waiting.visitable()
    other = await waiting.visitable()  # another clinic
    url = str(server.make_url("/"))
    await check_in(http, v.token)
    await sockets(url, "/waiting", cookie_header(http))
    scheduler = await sockets(url, "/clinic", await staff_headers(url.rstrip("/"), v.scheduler))
    seen = await scheduler.wait_for("queue", _status_is(v.appointment.id, "waiting"))
    assert seen["provider_id"] == str(v.provider.id)
    refused = await scheduler.call("admit", {"appointment_id": str(v.appointment.id)})
    assert refused["error"]["code"] == "forbidden"

    stranger = await sockets(url, "/clinic", await staff_headers(url.rstrip("/"), other.provider))
    for event, body in (
        ("admit", {"appointment_id": str(v.appointment.id)}),
        ("message", {"appointment_id": str(v.appointment.id), "text": "hi"}),
    ):
        answer = await stranger.call(event, body)
        assert answer["error"]["code"] == "not_found"
    queue = await stranger.wait_for("queue")
    assert all(p["appointment_id"] != str(v.appointment.id) for p in queue["patients"])
    # The stranger cannot open the visit page of someone else's visit either.
    own = await sockets(url, "/clinic", await staff_headers(url.rstrip("/"), v.provider))
    admitted = await own.call("admit", {"appointment_id": str(v.appointment.id)})
    http.session.cookie_jar.clear()  # drop the patient's own cookie
    headers = await staff_headers(url.rstrip("/"), other.provider)
    page = await http.get(admitted["url"], headers=headers)
    assert page.status == 404


async def test_bad_events_get_error_acks(server, http, waiting: WaitingFactory, sockets):
    v = await waiting.visitable()
    url = str(server.make_url("/"))
    provider = await sockets(url, "/clinic", await staff_headers(url.rstrip("/"), v.provider))
    bad = await provider.call("admit", {"appointment_id": "nope"})
    assert bad["error"]["code"] == "invalid_input" and "appointment_id" in bad["error"]["fields"]
    empty = await provider.call("message", {"appointment_id": str(v.appointment.id), "text": ""})
    assert empty["error"]["code"] == "invalid_input"
    not_waiting = await provider.call("admit", {"appointment_id": str(v.appointment.id)})
    assert not_waiting["error"]["code"] == "conflict"
    unknown = await provider.call("shout", {})
    assert unknown["error"]["code"] == "unknown_event"


async def test_connections_without_a_session_are_refused(server, waiting: WaitingFactory, sockets):
    url = str(server.make_url("/"))
    for namespace in ("/clinic", "/waiting"):
        with pytest.raises(socketio.exceptions.ConnectionError):
            await sockets(url, namespace, {})


async def test_the_automatic_no_show_reaches_the_live_queue(
    aiohttp_server, settings_factory, waiting: WaitingFactory, sockets
):
    app = create_app(
        settings_factory(noshow_after_minutes=1, noshow_poll_seconds=0.2, background_tasks=True)
    )
    server = await aiohttp_server(app, host="127.0.0.1")
    clinic, provider_account, _, kind = await waiting.clinic_day()
    url = str(server.make_url("/"))
    provider = await sockets(url, "/clinic", await staff_headers(url.rstrip("/"), provider_account))
    _, missed, _ = await waiting.appointment(
        clinic, provider_account, kind, starts_in=timedelta(minutes=-3)
    )
    queue = await provider.wait_for("queue", _status_is(missed.id, "no-show"))
    assert _row(queue, missed.id)["status"] == "no-show"


async def test_a_refusal_tells_the_client_why(server, waiting: WaitingFactory):
    client = socketio.AsyncClient(reconnection=False)
    reasons = []
    client.on("connect_error", reasons.append, namespace="/waiting")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            str(server.make_url("/")),
            namespaces=["/waiting"],
            transports=["websocket"],
            wait_timeout=10,
        )
    assert reasons == [
        {
            "message": "Please check in.",
            "data": {"code": "not_checked_in", "message": "Please check in."},
        }
    ]
