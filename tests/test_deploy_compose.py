"""deploy/compose.yaml as an operator runs it: valid Compose, TLS in front, each node's media port
published and announced, coturn sharing the app's TURN secret, and deploy/.env.example's
placeholders refused, so nobody runs with them.

Docker is not needed: the file is checked against the Compose specification's JSON schema (as
shipped by check-jsonschema) and read like compose reads it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from app.core.config import SettingsError, load_settings, new_note_key, setting_names
from tests.support import nginx

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
THIRD_PARTY = {"postgres", "redis", "nginx", "coturn"}
# Variables compose substitutes into compose.yaml that are not app settings themselves.
COMPOSE_ONLY = {"PUBLIC_HOSTNAME", "PUBLIC_IP", "POSTGRES_PASSWORD", "TLS_CERT_DIR"}
SECRETS = {"OPENCONSULT_SECRET_KEY", "OPENCONSULT_NOTE_KEYS", "OPENCONSULT_AUDIT_KEYS",
           "OPENCONSULT_TURN_SECRET", "POSTGRES_PASSWORD"}  # fmt: skip


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _app_services() -> dict[str, dict[str, Any]]:
    return {k: v for k, v in _compose()["services"].items() if k not in THIRD_PARTY}


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert match and duration, f"not a compose duration: {duration!r}"
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)


def _env_example() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"not NAME=value: {line!r}"
            values[name.strip()] = value.strip()
    return values


def test_compose_file_follows_the_compose_specification():
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    jsonschema.Draft202012Validator(schema).validate(_compose())


def test_every_service_has_an_image_and_a_healthcheck_or_says_why():
    services = _compose()["services"]
    for name, service in services.items():
        assert "image" in service or "build" in service, name
    for name, service in _app_services().items():
        # Liveness: /healthz, which never depends on PostgreSQL or Redis.
        assert "/healthz" in " ".join(service["healthcheck"]["test"]), name
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert {
        node: cond["condition"] for node, cond in services["nginx"]["depends_on"].items()
    } == dict.fromkeys(_app_services(), "service_healthy")


def test_each_node_publishes_and_announces_its_own_media_port():
    ports = {}
    for name, service in _app_services().items():
        env = service["environment"]
        port = int(env["OPENCONSULT_RTC_UDP_PORT"])
        # Host port = container port: the node announces PUBLIC_IP:<the port it binds>.
        assert service["ports"] == [f"{port}:{port}/udp"], name
        assert env["OPENCONSULT_RTC_ANNOUNCED_IPS"].startswith("${PUBLIC_IP:?"), name
        ports[name] = port
    assert len(set(ports.values())) == len(ports), f"two nodes share a media port: {ports}"


def test_nodes_drain_inside_their_stop_grace_period():
    for name, service in _app_services().items():
        drain = float(service["environment"]["OPENCONSULT_DRAIN_TIMEOUT_SECONDS"])
        assert _seconds(service["stop_grace_period"]) >= drain + 10, name


def test_nginx_terminates_tls_and_redirects_plain_http():
    service = _compose()["services"]["nginx"]
    assert set(service["ports"]) == {"80:80", "443:443"}
    mounts = {}
    for volume in service["volumes"]:
        match = re.fullmatch(r"(.+):(/[^:]+)(?::ro)?", volume)  # the source may hold `:-`
        assert match, volume
        mounts[match.group(2)] = match.group(1)
    assert mounts["/etc/nginx/certs"] == "${TLS_CERT_DIR:-./certs}"
    redirect = mounts["/etc/nginx/openconsult_https_redirect.conf"]
    assert (DEPLOY / redirect).is_file()
    config = (DEPLOY / "nginx.conf").read_text()
    assert "include openconsult_https_redirec[t].conf;" in config
    assert "ssl_certificate /etc/nginx/certs/fullchain.pem;" in config
    for node in _app_services().values():
        assert node["environment"]["OPENCONSULT_PUBLIC_URL"].startswith("https://")


@pytest.mark.skipif(nginx.executable() is None, reason="nginx is not installed")
def test_plain_http_answers_with_a_redirect_to_https_when_the_redirect_is_mounted(
    tmp_path: Path,
):
    port = nginx.free_port()
    config = nginx.write_config(tmp_path, {"app1": "127.0.0.1:9"}, port=port)
    shutil.copyfile(
        DEPLOY / "nginx" / "https_redirect.conf", tmp_path / "openconsult_https_redirect.conf"
    )
    checked = nginx.check_config(config)
    assert checked.returncode == 0, checked.stderr
    proc = subprocess.Popen(
        [nginx.executable() or "nginx", "-p", str(tmp_path), "-c", str(config),
         "-e", str(tmp_path / "error.log"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/visit/7?x=1", headers={"Host": "visits.clinic.example"}
        )
        opener = urllib.request.build_opener(_NoRedirect)
        deadline = time.monotonic() + 20
        while True:
            try:
                opener.open(request, timeout=2)
                pytest.fail("plain http was served, not redirected")
            except urllib.error.HTTPError as exc:
                assert exc.code == 301
                assert exc.headers["Location"] == "https://visits.clinic.example/visit/7?x=1"
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "error.log").read_text()
                assert time.monotonic() < deadline, "nginx did not answer"
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_coturn_listens_relays_and_shares_the_apps_turn_secret():
    coturn = _compose()["services"]["coturn"]
    assert {"3478:3478/udp", "3478:3478/tcp", "5349:5349/tcp"} <= set(coturn["ports"])
    args = dict(arg.split("=", 1) for arg in coturn["command"] if arg.startswith("--"))
    low, high = int(args["--min-port"]), int(args["--max-port"])
    assert f"{low}-{high}:{low}-{high}/udp" in coturn["ports"]
    secret = "${OPENCONSULT_TURN_SECRET:?"
    assert args["--static-auth-secret"].startswith(secret)
    assert args["--cert"].startswith("/etc/coturn/certs/") and args["--pkey"].startswith(
        "/etc/coturn/certs/"
    )
    assert "\nuse-auth-secret\n" in (DEPLOY / "coturn" / "turnserver.conf").read_text()
    for name, service in _app_services().items():
        env = service["environment"]
        assert env["OPENCONSULT_TURN_SECRET"].startswith(secret), name
        turn = env["OPENCONSULT_TURN_URLS"].split(",")
        assert {url.split("?")[0].rsplit(":", 1)[1] for url in turn} == {"3478", "5349"}


def test_secrets_are_required_never_defaulted():
    text = (DEPLOY / "compose.yaml").read_text()
    for name in SECRETS:
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert uses, f"{name} is not used"
        assert all(use.startswith(":?") for use in uses), f"{name} has a default: {uses}"


def test_env_example_names_only_settings_and_compose_variables():
    names = set(_env_example())
    text = (DEPLOY / "compose.yaml").read_text()
    used_by_compose = set(re.findall(r"\$\{([A-Z_]+)", text))
    assert names - setting_names() <= COMPOSE_ONLY, names - setting_names()
    assert used_by_compose >= COMPOSE_ONLY
    # Every variable compose needs from the operator is in the example, and only those.
    assert names == used_by_compose, names ^ used_by_compose


def _production_env(tmp_path: Path) -> dict[str, object]:
    return {
        "env": "production",
        "data_dir": tmp_path,
        "secret_key": "s" * 48,
        "note_keys": new_note_key("k1"),
        "audit_keys": new_note_key("a1"),
        "turn_urls": "turn:turn.clinic.example:3478",
        "turn_secret": "t" * 64,
    }


def test_env_example_placeholders_are_refused_in_production(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    for name in list(os.environ):
        if name in setting_names():
            monkeypatch.delenv(name)
    valid = _production_env(tmp_path)
    load_settings(**valid)  # the baseline runs
    example = _env_example()
    app_secrets = SECRETS & setting_names()
    for name in app_secrets:
        field = name.removeprefix("OPENCONSULT_").lower()
        with pytest.raises(SettingsError):
            load_settings(**{**valid, field: example[name]})
    # The secrets that are not the app's are empty, and compose refuses an empty one (`:?`).
    for name in SECRETS - app_secrets:
        assert example[name] == ""
    assert example["PUBLIC_IP"] == "" and example["PUBLIC_HOSTNAME"] == ""


_VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:[-?])([^}]*))?\}")


def _interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?error}` (an empty value is unset)."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        found = variables.get(name, "")
        if not found and kind == ":?":
            raise LookupError(f"{name}: {rest}")
        return found or (rest if kind == ":-" else "")

    return _VARIABLE.sub(one, value)


def test_the_nodes_start_with_a_filled_in_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Each node's environment, as compose passes it from a filled-in .env, is one the app
    accepts in production, with its own media port and the host's public address."""
    filled = {
        **_env_example(),
        "PUBLIC_HOSTNAME": "visits.clinic.example",
        "PUBLIC_IP": "203.0.113.10",
        "OPENCONSULT_SECRET_KEY": "s" * 48,
        "OPENCONSULT_NOTE_KEYS": new_note_key("k1"),
        "OPENCONSULT_AUDIT_KEYS": new_note_key("a1"),
        "OPENCONSULT_TURN_SECRET": "t" * 64,
        "POSTGRES_PASSWORD": "p" * 32,
    }
    for name, service in _app_services().items():
        for variable in list(os.environ):
            if variable in setting_names():
                monkeypatch.delenv(variable)
        env = {k: _interpolate(str(v), filled) for k, v in service["environment"].items()}
        for variable, value in env.items():
            monkeypatch.setenv(variable, value)
        settings = load_settings(data_dir=tmp_path)
        assert settings.env == "production" and settings.node_id == name
        assert service["ports"] == [f"{settings.rtc_udp_port}:{settings.rtc_udp_port}/udp"]
        assert settings.rtc_announced_ips == ("203.0.113.10",)
        assert settings.base_url == "https://visits.clinic.example"
        assert len(settings.turn_urls) == 3 and settings.stun_urls
    # As shipped, the example stops compose itself: its empty values are required ones.
    env = next(iter(_app_services().values()))["environment"]
    with pytest.raises(LookupError):
        for value in env.values():
            _interpolate(str(value), _env_example())
