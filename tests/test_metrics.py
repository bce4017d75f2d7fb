"""/metrics: who may read it, what its labels may hold, and the JSON log lines."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid

import aiohttp
import pytest
from yarl import URL

from app.core.logs import JsonFormatter
from app.main import create_app
from tests.support import nginx
from tests.support.metrics import Scrape
from tests.support.servers import app_server
from tests.support.waiting import wait_for

METRICS_TOKEN = "metrics-token-" + "m" * 24


async def test_without_a_token_only_direct_local_requests_read_metrics(client):
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    scrape = Scrape(await resp.text())
    assert scrape.value("openconsult_visits_live") == 0
    assert scrape.value("openconsult_participants") == 0

    # Through a proxy (any forwarding header): refused, even from loopback.
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        resp = await client.get("/metrics", headers={header: "203.0.113.9"})
        assert resp.status == 403, header
        assert (await resp.json())["error"]["code"] == "forbidden"


async def test_with_a_token_metrics_need_it(aiohttp_client, settings_factory):
    client = await aiohttp_client(create_app(settings_factory(metrics_token=METRICS_TOKEN)))
    for headers in (
        {},
        {"Authorization": "Bearer wrong-" + "m" * 30},
        {"Authorization": f"Basic {METRICS_TOKEN}"},
        {"Authorization": f"Bearer {METRICS_TOKEN}x"},
    ):
        resp = await client.get("/metrics", headers=headers)
        assert resp.status == 401, headers
        body = await resp.json()
        assert body["error"]["code"] == "not_authenticated"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert METRICS_TOKEN not in await resp.text()
    resp = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert resp.status == 200
    assert "openconsult_visits_live" in await resp.text()


async def test_requests_are_counted_by_route_template_never_by_url(client):
    visit_id, secret = uuid.uuid4(), "tok" + uuid.uuid4().hex
    assert (await client.get(f"/api/visits/{visit_id}/ice-servers")).status in (401, 404)
    assert (await client.get(f"/api/join/{secret}/consent")).status >= 400
    assert (await client.get(f"/no/such/{secret}")).status == 404
    assert (await client.get("/healthz")).status == 200

    scrape = Scrape(await (await client.get("/metrics")).text())
    routes = scrape.label_values("openconsult_http_request_duration_seconds_count", "route")
    assert {"/api/visits/{visit_id}/ice-servers", "/healthz", "unmatched"} <= routes
    assert "/api/join/{token}/consent" in routes, routes
    assert scrape.value("openconsult_http_requests_total", route="/healthz", status="200") == 1
    assert str(visit_id) not in scrape.text and secret not in scrape.text


@pytest.mark.skipif(nginx.executable() is None, reason="nginx is not installed")
async def test_the_shipped_nginx_config_hides_metrics(aiohttp_server, app):
    server = await aiohttp_server(app, host="127.0.0.1")
    async with aiohttp.ClientSession() as http:
        assert (await http.get(server.make_url("/metrics"))).status == 200
        nodes = {node: f"127.0.0.1:{server.port}" for node in nginx.NODE_IDS}
        # nginx waits (blocking) for the app's /healthz, which this event loop serves.
        running = nginx.nginx_proxy(nodes)
        proxy = await asyncio.to_thread(running.__enter__)
        try:
            for path in ("/metrics", "/metrics?x=1", "//metrics", "/%6Detrics"):
                resp = await http.get(URL(proxy.url + path, encoded=True))
                assert resp.status == 404, path
                assert "openconsult_" not in await resp.text()
            assert (await http.get(proxy.url + "/healthz")).status == 200
        finally:
            await asyncio.to_thread(running.__exit__, None, None, None)


def test_a_json_log_line_is_one_object_with_its_extra_fields():
    record = logging.LogRecord(
        "openconsult.test", logging.WARNING, __file__, 1, "visit %s ended", ("v1",), None
    )
    record.status = 200  # as `extra={"status": 200}` sets it
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "WARNING" and line["logger"] == "openconsult.test"
    assert line["message"] == "visit v1 ended" and line["status"] == 200
    assert line["time"].endswith("+00:00")
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert "ValueError: boom" in json.loads(JsonFormatter().format(record))["exception"]


async def test_a_server_with_json_logs_writes_json_lines_without_tokens(process_env):
    env = {**process_env, "OPENCONSULT_LOG_FORMAT": "json", "OPENCONSULT_LOG_LEVEL": "INFO"}
    secret = "tok" + uuid.uuid4().hex
    with app_server(env) as server:
        async with aiohttp.ClientSession() as http:
            assert (await http.get(f"{server.url}/api/join/{secret}/consent")).status >= 400

        def access_lines() -> list[dict[str, object]]:
            lines = [line for line in server.log.read_text().splitlines() if line.startswith("{")]
            parsed = [json.loads(line) for line in lines]
            return [p for p in parsed if str(p.get("path", "")).startswith("/api/join/")]

        line = (await wait_for(access_lines, 10, "the access log line of the join request"))[0]
        text = server.log.read_text()
    assert line["logger"] == "aiohttp.access" and line["level"] == "INFO"
    assert line["method"] == "GET" and line["path"] == "/api/join/***/consent"
    assert isinstance(line["status"], int) and isinstance(line["duration_ms"], float)
    assert secret not in text
    # Every log line is JSON; only the start banner (printed, not logged) is not.
    other = [
        line
        for line in text.splitlines()
        if line.strip() and not line.startswith("{") and not line.startswith("OpenConsult on ")
    ]
    assert other == []
