"""deploy/k8s as kustomize would build it, checked offline: every manifest valid against the
Kubernetes API's JSON schemas (kubernetes-validate ships them), the overlay's patches landing on
resources the base has, and the app's pods wired the way the nodes need (stable ids and URLs,
probes, drain, one media port per pod, a socket path per pod, the operator's Secret).

There is no kustomize binary here: the test reads kustomization.yaml itself. It understands what
this folder uses (resources, configMapGenerator files, images, patches: strategic merge of a
ConfigMap, JSON 6902 add/replace) and fails on anything else, so a new feature gets a check."""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from app.core.config import load_settings, new_note_key, setting_names

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
BASE = DEPLOY / "k8s" / "base"
OVERLAYS = sorted(p.parent for p in (DEPLOY / "k8s" / "overlays").glob("*/kustomization.yaml"))
KUBERNETES = "1.31"  # the oldest minor version the manifests are checked against
KUSTOMIZATION_KEYS = {"apiVersion", "kind", "labels", "namespace", "resources",
                      "configMapGenerator", "images", "patches"}  # fmt: skip
Resource = dict[str, Any]


def _kustomization(folder: Path) -> dict[str, Any]:
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert spec["kind"] == "Kustomization"
    assert set(spec) <= KUSTOMIZATION_KEYS, f"not understood here: {set(spec) - KUSTOMIZATION_KEYS}"
    return spec


def build(folder: Path) -> list[Resource]:
    """The resources `kustomize build folder` yields, for the features this repository uses."""
    spec = _kustomization(folder)
    resources: list[Resource] = []
    for entry in spec.get("resources", []):
        path = (folder / entry).resolve()
        if path.is_dir():
            resources.extend(build(path))
        else:
            resources.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    for generator in spec.get("configMapGenerator", []):
        assert set(generator) == {"name", "files"}, generator
        data = {Path(name).name: (folder / name).read_text() for name in generator["files"]}
        resources.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]},
             "data": data}
        )  # fmt: skip
    for patch in spec.get("patches", []):
        body = yaml.safe_load((folder / patch["path"]).read_text())
        if "target" in patch:
            target = _find(resources, patch["target"]["kind"], patch["target"]["name"])
            _json_patch(target, body)
        else:
            target = _find(resources, body["kind"], body["metadata"]["name"])
            assert body["kind"] == "ConfigMap", "strategic merge is understood for ConfigMaps"
            target.setdefault("data", {}).update(body.get("data", {}))
    for image in spec.get("images", []):
        # kustomize matches the name without its tag, and keeps a tag it does not replace.
        containers = [c for r in resources for c in _containers(r) if _image(c)[0] == image["name"]]
        assert containers, f"image {image['name']} is used by no container"
        for container in containers:
            name, tag = _image(container)
            name, tag = image.get("newName", name), image.get("newTag", tag)
            container["image"] = f"{name}:{tag}" if tag else name
    if "namespace" in spec:
        for resource in resources:
            resource["metadata"]["namespace"] = spec["namespace"]
    return resources


def _image(container: dict[str, Any]) -> tuple[str, str | None]:
    name, sep, tag = container["image"].rpartition(":")
    if not sep or "/" in tag:  # no tag (a colon there is a registry's port)
        return container["image"], None
    return name, tag


def _find(resources: list[Resource], kind: str, name: str) -> Resource:
    found = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(found) == 1, f"a patch targets {kind}/{name}, which the base does not have"
    return found[0]


def _json_patch(resource: Resource, operations: list[dict[str, Any]]) -> None:
    for operation in operations:
        *parents, last = operation["path"].lstrip("/").split("/")
        node: Any = resource
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if operation["op"] == "replace":
            key: Any = int(last) if isinstance(node, list) else last
            exists = key < len(node) if isinstance(node, list) else key in node
            assert exists, f"replace of {operation['path']}, which does not exist"
            node[key] = operation["value"]
        elif operation["op"] == "add":
            assert isinstance(node, dict), "add is understood on objects"
            node[last] = operation["value"]
        else:
            pytest.fail(f"JSON patch op {operation['op']!r} is not understood here")


def _containers(resource: Resource) -> list[dict[str, Any]]:
    pod = resource.get("spec", {}).get("template", {}).get("spec", {})
    return list(pod.get("containers", [])) + list(pod.get("initContainers", []))


def _one(resources: list[Resource], kind: str, name: str) -> Resource:
    return _find(resources, kind, name)


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


BUILDS = {"base": BASE, **{f"overlay {p.name}": p for p in OVERLAYS}}


@pytest.fixture(params=list(BUILDS), scope="module")
def built(request: pytest.FixtureRequest) -> list[Resource]:
    return build(BUILDS[request.param])


def test_there_is_an_example_overlay():
    assert OVERLAYS, "deploy/k8s/overlays/<name>/kustomization.yaml"


def test_every_manifest_is_valid_against_the_kubernetes_schemas(built: list[Resource]):
    kinds = set()
    for resource in copy.deepcopy(built):
        try:
            kubernetes_validate.validate(resource, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as exc:
            name = f"{resource['kind']}/{resource['metadata']['name']}"
            pytest.fail(f"{name}: {exc.message} at {list(exc.path)}")
        kinds.add(resource["kind"])
    assert {"StatefulSet", "Service", "Ingress", "PodDisruptionBudget", "Deployment",
            "ConfigMap"} <= kinds  # fmt: skip


def test_no_secret_is_shipped(built: list[Resource]):
    # The operator creates openconsult-secrets and openconsult-tls: no value of theirs lives here.
    assert not [r for r in built if r["kind"] == "Secret"]
    for folder in BUILDS.values():
        assert "secretGenerator" not in _kustomization(folder)
    refs = {
        item["valueFrom"]["secretKeyRef"]["name"]
        for resource in built
        for container in _containers(resource)
        for item in container.get("env", [])
        if "secretKeyRef" in item.get("valueFrom", {})
    }
    assert refs == {"openconsult-secrets"}


def test_app_pods_set_only_settings_the_app_knows(built: list[Resource]):
    app = _one(built, "StatefulSet", "openconsult")
    (container,) = _containers(app)
    names = set(_env(container))
    for source in container["envFrom"]:
        config = _one(built, "ConfigMap", source["configMapRef"]["name"])
        names |= set(config["data"])
        assert config["data"]["OPENCONSULT_ENV"] == "production"
    assert names <= setting_names(), names - setting_names()
    # PostgreSQL and Redis are external: their URLs come from the operator's Secret.
    for url in ("DATABASE_URL", "REDIS_URL"):
        assert _env(container)[url]["valueFrom"]["secretKeyRef"]["key"] == url


def test_each_pod_is_a_node_with_a_stable_id_and_url(built: list[Resource]):
    app = _one(built, "StatefulSet", "openconsult")
    env = _env(_containers(app)[0])
    assert env["OPENCONSULT_NODE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    headless = _one(built, "Service", app["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    # A draining (not ready) node keeps its DNS name: the others must still reach it.
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert env["OPENCONSULT_NODE_URL"]["value"] == (
        f"http://$(OPENCONSULT_NODE_ID).{headless['metadata']['name']}:8080"
    )
    names = list(env)
    assert names.index("OPENCONSULT_NODE_ID") < names.index("OPENCONSULT_NODE_URL")


def test_probes_and_drain_match_the_app(built: list[Resource]):
    app = _one(built, "StatefulSet", "openconsult")
    pod = app["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    drain = float(_env(container)["OPENCONSULT_DRAIN_TIMEOUT_SECONDS"]["value"])
    assert pod["terminationGracePeriodSeconds"] >= drain + 10
    pdb = _one(built, "PodDisruptionBudget", "openconsult")
    assert (
        pdb["spec"]["selector"]["matchLabels"].items()
        <= app["spec"]["template"]["metadata"]["labels"].items()
    )


def test_each_pod_publishes_and_announces_its_media_port(built: list[Resource]):
    app = _one(built, "StatefulSet", "openconsult")
    (container,) = _containers(app)
    env = _env(container)
    port = int(env["OPENCONSULT_RTC_UDP_PORT"]["value"])
    udp = [p for p in container["ports"] if p.get("protocol") == "UDP"]
    assert udp == [{"name": "media", "containerPort": port, "hostPort": port, "protocol": "UDP"}]
    assert env["OPENCONSULT_RTC_ANNOUNCED_IPS"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "status.hostIP"
    )


def test_each_replica_has_its_socket_path_and_service(built: list[Resource]):
    app = _one(built, "StatefulSet", "openconsult")
    ingress = _one(built, "Ingress", "openconsult")
    annotations = ingress["metadata"]["annotations"]
    for name in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{name}"]) >= 30
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] in ingress["spec"]["tls"][0]["hosts"]
    routes = {p["path"]: p["backend"]["service"]["name"] for p in rule["http"]["paths"]}
    pod_labels = app["spec"]["template"]["metadata"]["labels"]
    for index in range(app["spec"]["replicas"]):
        pod = f"{app['metadata']['name']}-{index}"
        service = _one(built, "Service", routes.pop(f"/node/{pod}/socket.io/"))
        assert service["spec"]["selector"] == {"statefulset.kubernetes.io/pod-name": pod}
        assert service["spec"]["publishNotReadyAddresses"] is True  # its visits, while it drains
    pages = _one(built, "Service", routes.pop("/"))
    assert pages["spec"]["selector"].items() <= pod_labels.items()
    assert not routes, f"paths to pods that do not exist: {routes}"


def test_coturn_listens_and_shares_the_apps_turn_secret(built: list[Resource]):
    coturn = _one(built, "Deployment", "coturn")
    pod = coturn["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["hostNetwork"] is True  # the relay range without a port mapping each
    ports = {(p["containerPort"], p["protocol"]) for p in container["ports"]}
    assert {(3478, "UDP"), (3478, "TCP"), (5349, "TCP")} <= ports
    args = dict(a.split("=", 1) for a in container["args"] if a.startswith("--"))
    assert 1024 < int(args["--min-port"]) < int(args["--max-port"])
    secret = _env(container)["OPENCONSULT_TURN_SECRET"]["valueFrom"]["secretKeyRef"]
    assert args["--static-auth-secret"] == "$(OPENCONSULT_TURN_SECRET)"
    app_env = _env(_containers(_one(built, "StatefulSet", "openconsult"))[0])
    assert app_env["OPENCONSULT_TURN_SECRET"]["valueFrom"]["secretKeyRef"] == secret
    config = _one(built, "ConfigMap", "coturn-config")["data"]["turnserver.conf"]
    assert config == (DEPLOY / "coturn" / "turnserver.conf").read_text()
    assert "\nuse-auth-secret\n" in config


def test_overlay_patches_the_clinic_names():
    for folder in OVERLAYS:
        built = build(folder)
        ingress = _one(built, "Ingress", "openconsult")
        config = _one(built, "ConfigMap", "openconsult-config")["data"]
        assert config["OPENCONSULT_PUBLIC_URL"] == f"https://{ingress['spec']['rules'][0]['host']}"
        assert all(r["metadata"].get("namespace") for r in built)


def test_a_pod_starts_with_the_manifests_settings(
    built: list[Resource], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The environment Kubernetes would give pod openconsult-1 (ConfigMap, field references,
    `$(VAR)` expansion, an operator's Secret) is one the app accepts in production."""
    app = _one(built, "StatefulSet", "openconsult")
    (container,) = _containers(app)
    fields = {"metadata.name": "openconsult-1", "status.hostIP": "198.51.100.7"}
    secret = {
        "OPENCONSULT_SECRET_KEY": "s" * 48,
        "OPENCONSULT_NOTE_KEYS": new_note_key("k1"),
        "OPENCONSULT_AUDIT_KEYS": new_note_key("a1"),
        "OPENCONSULT_TURN_SECRET": "t" * 64,
        "DATABASE_URL": "postgresql://openconsult:pw@db.internal:5432/openconsult",
        "REDIS_URL": "redis://redis.internal:6379/0",
    }
    env: dict[str, str] = {}
    for source in container["envFrom"]:
        env.update(_one(built, "ConfigMap", source["configMapRef"]["name"])["data"])
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], item["value"])
        elif "fieldRef" in item["valueFrom"]:
            env[item["name"]] = fields[item["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            env[item["name"]] = secret[item["valueFrom"]["secretKeyRef"]["key"]]
    for variable in list(os.environ):
        if variable in setting_names():
            monkeypatch.delenv(variable)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    settings = load_settings(data_dir=tmp_path)
    assert settings.env == "production" and settings.node_id == "openconsult-1"
    assert settings.node_url == "http://openconsult-1.openconsult-nodes:8080"
    assert settings.rtc_announced_ips == ("198.51.100.7",)
    assert settings.turn_urls and settings.stun_urls
