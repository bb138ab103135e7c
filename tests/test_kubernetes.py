"""deploy/kubernetes/: the kustomize base and the example overlay render (the real `kubectl
kustomize`), every object is valid against the Kubernetes schemas, and what the manifests say of
drwatch holds for drwatch."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from core.config.loading import parse_config
from exporter.cli.main import _parser

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
TREES = ["base", "overlays/example", "overlays/sharded"]
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}  # CRDs: no schema in Kubernetes itself


def _render(tree: str) -> list[dict[str, Any]]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    out = subprocess.run(
        ["kubectl", "kustomize", str(KUBERNETES / tree)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def _one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


@pytest.mark.parametrize("tree", TREES)
def test_every_object_is_valid_against_the_kubernetes_schemas(tree: str) -> None:
    objects = _render(tree)
    kinds = {o["kind"] for o in objects}
    assert {"StatefulSet", "Service", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy"} <= kinds
    assert kinds >= CUSTOM_KINDS
    for obj in objects:
        if obj["kind"] not in CUSTOM_KINDS:
            kubernetes_validate.validate(obj, "1.32.0", strict=True)  # raises on any error


@pytest.mark.parametrize("tree", TREES)
def test_the_pod_runs_drwatch_as_the_cli_and_the_routes_expect(tree: str) -> None:
    objects = _render(tree)
    pod = _one(objects, "StatefulSet")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (shard,) = container["env"]
    assert shard["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['apps.kubernetes.io/pod-index']"
    )  # the StatefulSet's pod index, which Kubernetes substitutes for $(SHARD)
    parsed = _parser().parse_args([a.replace("$(SHARD)", "0") for a in container["args"]])
    assert parsed.command == "run" and parsed.config == "/etc/drwatch/drwatch.yml"
    (port,) = container["ports"]
    assert port["containerPort"] == int(parsed.listen_address.rpartition(":")[2])
    assert container["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    assert container["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] != 0
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] and not context["allowPrivilegeEscalation"]
    assert context["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["requests"]
    # A read-only root: every place drwatch writes is a volume.
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/etc/drwatch", "/var/lib/drwatch", "/tmp"} <= mounts


@pytest.mark.parametrize("tree", TREES)
def test_the_config_map_holds_a_valid_config_fed_by_the_secret(tree: str) -> None:
    objects = _render(tree)
    config_map = _one(objects, "ConfigMap")
    pod = _one(objects, "StatefulSet")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if "configMap" in v]
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]  # the hashed name
    text = config_map["data"]["drwatch.yml"]
    variables = set(re.findall(r"\$\{(\w+)\}", text))
    assert variables, "secrets come from the environment, never the ConfigMap"
    env = {name: f"redis://127.0.0.1:1/0?{name}" for name in variables}
    env.update({n: "postgresql://drwatch@127.0.0.1:1/app" for n in variables if "POSTGRES" in n})
    loaded = parse_config(text, env=env)  # raises ConfigError naming any problem
    assert loaded.config.targets
    (source,) = pod["containers"][0]["envFrom"]
    assert source["secretRef"]["name"] == "drwatch"


def test_the_service_monitor_scrapes_the_services_port() -> None:
    objects = _render("base")
    service, monitor = _one(objects, "Service"), _one(objects, "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_each_replica_has_a_name_for_the_webhook() -> None:
    """The governing Service is headless: drwatch-<i>.drwatch resolves to replica i, whose
    webhook acts on its shard's targets (Alertmanager lists one URL per replica)."""
    objects = _render("overlays/sharded")
    service, stateful = _one(objects, "Service"), _one(objects, "StatefulSet")
    assert service["spec"]["clusterIP"] == "None"
    assert stateful["spec"]["serviceName"] == service["metadata"]["name"]


def test_the_overlay_keeps_verdicts_on_a_volume_claim() -> None:
    objects = _render("overlays/example")
    pod = _one(objects, "StatefulSet")["spec"]["template"]["spec"]
    (state,) = [v for v in pod["volumes"] if v["name"] == "state"]
    claim = _one(objects, "PersistentVolumeClaim")
    assert state == {
        "name": "state",
        "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]},
    }
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {
        "drwatch"
    }


@pytest.mark.parametrize("tree", TREES)
def test_one_replica_per_shard(tree: str) -> None:
    stateful_set = _one(_render(tree), "StatefulSet")
    args = stateful_set["spec"]["template"]["spec"]["containers"][0]["args"]
    parsed = _parser().parse_args([a.replace("$(SHARD)", "0") for a in args])
    assert stateful_set["spec"]["replicas"] == parsed.total_shards
    assert (tree == "overlays/sharded") == (parsed.total_shards > 1)


@pytest.mark.parametrize("tree", ["overlays/example", "overlays/sharded"])
def test_each_overlay_deploys_where_the_readme_puts_the_secret_with_an_image_named(
    tree: str,
) -> None:
    """The README creates the Secret with `-n drwatch` and applies the overlay without `-n`:
    every namespaced object of the overlay is in `drwatch`, and the image is a registry's."""
    objects = _render(tree)
    namespaced = [o for o in objects if o["kind"] != "Namespace"]
    assert {o["metadata"].get("namespace") for o in namespaced} == {"drwatch"}
    (container,) = _one(objects, "StatefulSet")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/drwatch:0.1.0"
    readme = (ROOT / "README.md").read_text()
    assert "kubectl -n drwatch create secret generic drwatch" in readme
    assert "docker push registry.example.com/drwatch:0.1.0" in readme
