"""Deployment facts checked on the real ``tritonserver`` 2.51 (the NGC 24.10 image's version).

- ``--model-config-name=cpu`` makes the server read ``<model>/configs/cpu.pbtxt``, so the
  CPU variant of the compose stack serves the production repository (whose ``config.pbtxt``
  pins ``KIND_GPU``) on a machine without a GPU.
- Every Triton metric the Grafana dashboard queries is one the server exposes.
- The tracker image's health check, run against the real service (``python -m
  tracker_service``, configured by environment only, as in the container) in front of the
  real server, says healthy.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from tests.integration.conftest import ServerFactory
from tests.unit.test_deployment import DASHBOARD, tracker_healthcheck
from tracker_service.model_spec import SMPL, SMPL_FACES_FILE
from tracker_tools.cpu_configs import CPU_CONFIG_NAME, cpu_config_path
from tracker_tools.model_repository import build_local_repository
from tracker_tools.triton_server import (
    LocalTritonServer,
    TritonInstallation,
    TritonServerError,
    free_ports,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


class ConfigNamedServer(LocalTritonServer):
    """The local server started with ``--model-config-name``."""

    def __init__(self, *, config_name: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._config_name = config_name

    def _command(self, installation: TritonInstallation) -> list[str]:
        return [*super()._command(installation), f"--model-config-name={self._config_name}"]


@pytest.fixture(scope="module")
def gpu_pinned_repository(production_repository: Path, tmp_path_factory) -> Path:
    """A local ``smpl`` whose config.pbtxt pins KIND_GPU, with a CPU config beside it.

    As in production: the default config wants a GPU (there is none here), the CPU config
    under ``configs/`` is the same model on the CPU.
    """
    root = tmp_path_factory.mktemp("gpu_pinned")
    build_local_repository(production_repository, root, intra_op_threads=1)
    for model in [p for p in root.iterdir() if p.name != SMPL.name]:
        for path in sorted(model.rglob("*"), reverse=True):
            path.unlink() if not path.is_dir() else path.rmdir()
        model.rmdir()
    model_dir = root / SMPL.name
    cpu_text = (model_dir / "config.pbtxt").read_text()
    gpu = text_format.Parse(cpu_text, mc.ModelConfig())
    for group in gpu.instance_group:
        group.kind = mc.ModelInstanceGroup.KIND_GPU
    (model_dir / "config.pbtxt").write_text(text_format.MessageToString(gpu))
    cpu_config_path(model_dir).parent.mkdir()
    cpu_config_path(model_dir).write_text(cpu_text)
    return root


def test_the_cpu_config_name_serves_a_gpu_pinned_model_on_the_cpu(
    triton_venv: Path, gpu_pinned_repository: Path, tmp_path: Path
) -> None:
    http_port, grpc_port, metrics_port = free_ports(3)
    server = ConfigNamedServer(
        config_name=CPU_CONFIG_NAME, repository=gpu_pinned_repository, models=[SMPL.name],
        log_file=tmp_path / "cpu.log", http_port=http_port, grpc_port=grpc_port,
        metrics_port=metrics_port, startup_timeout_s=120.0, venv=triton_venv,
    )
    with server:
        with urllib.request.urlopen(f"{server.http_url}/v2/models/{SMPL.name}/config") as r:
            served = json.load(r)
    assert [g["kind"] for g in served["instance_group"]] == ["KIND_CPU"]


def test_without_it_the_gpu_pinned_model_does_not_load(
    local_server_factory: ServerFactory, gpu_pinned_repository: Path, tmp_path: Path
) -> None:
    server = local_server_factory(gpu_pinned_repository, [SMPL.name], tmp_path / "gpu.log")
    with pytest.raises((TritonServerError, TimeoutError)):
        server.start()
        try:
            server.wait_ready(timeout_s=60)
        finally:
            server.stop()
    assert "has kind KIND_GPU but no GPUs are available" in server.log_tail(80)


def test_the_dashboard_queries_metrics_the_server_exposes(triton_server: LocalTritonServer):
    with urllib.request.urlopen(triton_server.metrics_url) as response:
        exposed = set(re.findall(r"^# TYPE (\w+) ", response.read().decode(), re.M))
    queried = set()
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            queried |= set(re.findall(r"\bnv_[a-z0-9_]+\b", target["expr"]))
    # GPU metrics come from DCGM: off on this CPU machine, absent under WSL2 (documented).
    missing = {name for name in queried - exposed if not name.startswith("nv_gpu_")}
    assert not missing, f"the dashboard queries metrics Triton 2.51 does not expose: {missing}"
    assert {"nv_inference_count", "nv_inference_exec_count"} <= exposed


@pytest.fixture(scope="module")
def service_process(
    triton_server: LocalTritonServer, production_repository: Path, tmp_path_factory
) -> Iterator[int]:
    """``python -m tracker_service`` (the image's CMD) on a free port; yields the port."""
    (port,) = free_ports(1)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")},
        "TRACKER_HOST": "127.0.0.1",
        "TRACKER_PORT": str(port),
        "TRACKER_TRITON_URL": triton_server.grpc_url,
        "TRACKER_SMPL_FACES": str(production_repository / SMPL.name / "1" / SMPL_FACES_FILE),
        "TRACKER_THREADS": "2",
    }
    log = tmp_path_factory.mktemp("service") / "service.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "tracker_service"], cwd=REPO, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_tracker_healthcheck_is_healthy_in_front_of_triton(service_process: int) -> None:
    command = tracker_healthcheck()
    env = {**os.environ, "TRACKER_PORT": str(service_process)}
    deadline = time.monotonic() + 90
    while True:
        result = subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True,
                                text=True, timeout=30, check=False)
        if result.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert result.returncode == 0, result.stderr[-2000:]
