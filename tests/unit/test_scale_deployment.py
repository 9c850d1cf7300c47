"""Static checks of the scaled-out deployment: Kubernetes manifests and the compose profile.

No cluster and no Docker engine: ``kubernetes-validate`` (PyPI) validates every manifest
against the Kubernetes API's schemas, strictly (an unknown field fails); the rendered
overlay is checked too where ``kubectl`` (its built-in kustomize) is installed. The real
Compose v2 binary resolves the ``scale`` profile.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.unit.test_deployment import (  # noqa: F401 (fixtures)
    compose_binary,
    compose_env,
    run_compose,
)
from tracker_service.settings import env_name, setting_fields

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
#: Kustomize's own files and patches: not resources.
NOT_RESOURCES = {"kustomization.yaml", "triton-gpu.yaml", "prometheus-adapter-values.yaml"}
VERSION = kubernetes_validate.latest_version()
SESSION_HASH = "$http_x_session_id"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


RESOURCES = {
    f"{path.relative_to(K8S)}#{i}": doc
    for path in sorted(K8S.rglob("*.yaml"))
    if path.name not in NOT_RESOURCES
    for i, doc in enumerate(_documents(path))
}
WORKLOADS = {k: d for k, d in RESOURCES.items() if d["kind"] in ("Deployment", "StatefulSet")}


def _containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return workload["spec"]["template"]["spec"]["containers"]


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in RESOURCES.values() if d["kind"] == kind]


@pytest.mark.parametrize("name", list(RESOURCES))
def test_every_manifest_validates_against_the_kubernetes_schemas(name):
    kubernetes_validate.validate(RESOURCES[name], VERSION, strict=True)


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_workloads_have_probes_resources_non_root_and_a_disruption_budget(name):
    workload = WORKLOADS[name]
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    for container in _containers(workload):
        assert {"requests", "limits"} <= set(container["resources"]), container["name"]
        assert {"readinessProbe", "livenessProbe"} <= set(container), container["name"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    labels = workload["spec"]["selector"]["matchLabels"]
    budgets = [
        p for p in _of_kind("PodDisruptionBudget") if p["spec"]["selector"]["matchLabels"] == labels
    ]
    assert len(budgets) == 1, f"{name}: one PodDisruptionBudget selects its pods"


def test_triton_waits_for_model_loading_and_scales_on_its_queue_time():
    (triton,) = [d for d in _of_kind("Deployment") if d["metadata"]["name"] == "triton"]
    (container,) = _containers(triton)
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == container["readinessProbe"]["httpGet"]["path"]
    assert startup["httpGet"]["path"] == "/v2/health/ready"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 20 * 60, "engine builds"
    (hpa,) = _of_kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "triton"
    (metric,) = hpa["spec"]["metrics"]
    name = metric["pods"]["metric"]["name"]
    rules = yaml.safe_load((K8S / "prometheus-adapter-values.yaml").read_text())
    (rule,) = rules["rules"]["custom"]
    assert rule["name"]["as"] == name and "nv_inference_queue_duration_us" in rule["metricsQuery"]


def test_api_replicas_queue_and_workers_run_every_job():
    deployments = {d["metadata"]["name"]: d for d in _of_kind("Deployment")}
    env = {
        name: {e["name"]: e for e in _containers(deployments[name])[0]["env"]}
        for name in ("tracker-api", "tracker-worker")
    }
    assert env["tracker-api"]["TRACKER_JOB_WORKERS"]["value"] == "0"
    assert int(env["tracker-worker"]["TRACKER_JOB_WORKERS"]["value"]) >= 1
    worker = _containers(deployments["tracker-worker"])[0]
    assert worker["command"] == ["python", "-m", "tracker_service.worker"]
    for name in env:
        database = env[name]["TRACKER_JOB_DATABASE"]["valueFrom"]["secretKeyRef"]
        assert database == {"name": "tracker-database", "key": "url"}
        container = _containers(deployments[name])[0]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["artifacts"] == "/app/data", "one artifact folder for every replica"
    claims = {c["metadata"]["name"]: c for c in _of_kind("PersistentVolumeClaim")}
    claim = claims["tracker-artifacts"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


def test_every_tracker_variable_is_a_setting():
    known = {env_name(f.name) for _, f in setting_fields()}
    used = {name for config in _of_kind("ConfigMap") for name in config["data"]}
    for workload in WORKLOADS.values():
        for container in _containers(workload):
            used |= {e["name"] for e in container.get("env", [])}
    tracker = {name for name in used if name.startswith("TRACKER_")}
    assert tracker and tracker <= known, tracker - known


def test_the_ingress_hashes_the_session_header_consistently():
    (ingress,) = _of_kind("Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/upstream-hash-by"] == SESSION_HASH
    proxy = (REPO / "docker" / "nginx" / "scale.conf").read_text()
    assert f"hash {SESSION_HASH} consistent;" in proxy
    rules = (REPO / "docker" / "nginx" / "tracker-proxy.conf").read_text()
    assert "non_idempotent" in annotations["nginx.ingress.kubernetes.io/proxy-next-upstream"]
    assert "non_idempotent" in rules


def test_the_gpu_overlay_renders_and_validates():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (its built-in kustomize) is not installed: overlay not rendered")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / "gpu")],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    for document in documents:
        kubernetes_validate.validate(document, VERSION, strict=True)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in documents}
    assert {("StatefulSet", "postgres"), ("Secret", "tracker-database")} <= kinds
    deployments = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}
    triton = deployments["triton"]
    assert _containers(triton)[0]["resources"]["limits"]["nvidia.com/gpu"] == 1


def test_the_compose_scale_profile_resolves(compose_binary, compose_env):  # noqa: F811
    result = run_compose(
        compose_binary, compose_env, "-f", "compose.yaml", "--profile", "scale", "config",
        "--format", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert {"postgres", "tracker-api", "tracker-worker", "proxy"} <= set(services)
    api, worker = services["tracker-api"], services["tracker-worker"]
    assert api["environment"]["TRACKER_JOB_WORKERS"] == "0"
    assert worker["command"] == ["python", "-m", "tracker_service.worker"]
    assert api["deploy"]["replicas"] >= 2 and worker["deploy"]["replicas"] >= 2
    for service in (api, worker):
        assert service["environment"]["TRACKER_JOB_DATABASE"].startswith("postgresql://")
        assert {v["source"] for v in service["volumes"]} >= {"tracker_artifacts"}
        assert "ports" not in service, "only the proxy is published"
    mounted = {Path(v["source"]).name for v in services["proxy"]["volumes"]}
    assert mounted == {"scale.conf", "tracker-proxy.conf"}
