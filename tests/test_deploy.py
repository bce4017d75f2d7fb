"""The deployment files speak the app's language: commands and settings that exist."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from app.__main__ import build_parser
from app.core.config import setting_names
from tests.support import nginx

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
THIRD_PARTY = {"postgres", "redis", "nginx", "coturn"}


def test_compose_sets_only_settings_the_app_knows():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    known = setting_names()
    app_services = {k: v for k, v in compose["services"].items() if k not in THIRD_PARTY}
    assert len(app_services) >= 2, "the compose file runs several app processes"
    for name, service in app_services.items():
        env = service["environment"]
        assert set(env) <= known, f"{name}: unknown settings {set(env) - known}"
        assert env["DATABASE_URL"].startswith("postgresql://")
        assert env["REDIS_URL"].startswith("redis://")
        assert env["OPENCONSULT_ENV"] == "production"
        # Production has no development mailbox: the operator's SMTP server is passed through.
        assert env["OPENCONSULT_SMTP_HOST"] == "${OPENCONSULT_SMTP_HOST:-}"
    assert {"postgres", "redis"} <= set(compose["services"])


def test_dockerfile_runs_a_real_command_with_known_settings():
    text = (DEPLOY / "Dockerfile").read_text()
    assert 'CMD ["python", "-m", "app", "serve"]' in text
    build_parser().parse_args(["serve"])
    app_names = set(re.findall(r"\b(OPENCONSULT_[A-Z_]+)=", text))
    assert app_names and app_names <= setting_names()


def _app_services() -> dict[str, dict]:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return {k: v for k, v in compose["services"].items() if k not in THIRD_PARTY}


def test_compose_runs_three_nodes_that_nginx_routes_to_by_id():
    nodes = {s["environment"]["OPENCONSULT_NODE_ID"]: s for s in _app_services().values()}
    assert len(nodes) == 3
    for node_id, service in nodes.items():
        assert service["environment"]["OPENCONSULT_NODE_URL"] == f"http://{node_id}:8080"
    # The shipped nodes block is exactly what tests render for their own nodes.
    assert set(nginx.SHIPPED_NODES) == set(nodes)
    shipped = nginx._NODES_BLOCK.search(nginx.CONFIG.read_text())
    assert shipped is not None and shipped.group(0) == nginx.nodes_block(nginx.SHIPPED_NODES)
    # nginx's address is the one proxy the nodes believe X-Forwarded-For from.
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    proxy = compose["services"]["nginx"]["networks"]["openconsult"]["ipv4_address"]
    for service in nodes.values():
        assert service["environment"]["OPENCONSULT_TRUSTED_PROXIES"] == proxy


@pytest.mark.skipif(nginx.executable() is None, reason="nginx is not installed")
def test_nginx_config_parses_with_tls(tmp_path: Path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    # The shipped node ids, on addresses this machine resolves (compose's names it does not).
    nodes = {node_id: f"127.0.0.1:{8081 + i}" for i, node_id in enumerate(nginx.SHIPPED_NODES)}
    config = nginx.write_config(tmp_path / "nginx", nodes, port=nginx.free_port(), tls=(cert, key))
    text = config.read_text()
    assert (
        "ssl_certificate " in text
        and "proxy_set_header Host $http_host;"
        in (config.parent / nginx.LOCATIONS.name).read_text()
    )
    checked = nginx.check_config(config)
    assert checked.returncode == 0, checked.stderr
