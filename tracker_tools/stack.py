"""The local stack without Docker: a real Triton server and the tracker service.

``make serve`` (``scripts/serve.py``) runs it in the foreground until Ctrl-C; the demo and
the benchmark use :func:`local_stack`. Triton serves the local (Python backend)
repository derived from ``model_repository/``; the service runs as ``python -m
tracker_service`` in its own process, configured by ``TRACKER_*`` variables.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tracker_service.model_spec import MODELS, SMPL, SMPL_FACES_FILE
from tracker_tools.client import ClientError, ServiceClient
from tracker_tools.model_repository import build_local_repository
from tracker_tools.triton_server import LocalTritonServer

log = logging.getLogger(__name__)
#: The repository's root: every default path is under it, whatever the working directory.
REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD = REPO_ROOT / "build"
MODEL_REPOSITORY = REPO_ROOT / "model_repository"
#: How long the service may take to stop after SIGTERM before it is killed.
STOP_TIMEOUT_S = 60.0


class StackError(RuntimeError):
    """The local stack cannot start: models missing, or the service did not come up."""


@contextmanager
def local_stack(
    *,
    repository: Path = MODEL_REPOSITORY,
    port: int = 5000,
    triton_ports: tuple[int, int, int] = (8000, 8001, 8002),
    startup_timeout_s: float = 900.0,
    service_env: dict[str, str] | None = None,
    providers: Sequence[str] = (),
) -> Iterator[tuple[str, LocalTritonServer, subprocess.Popen[bytes]]]:
    """Start Triton and the service; yield (service URL, Triton server, service process).

    Args:
        repository: The production model repository holding the exported models.
        port: The service's HTTP port.
        triton_ports: Triton's HTTP, gRPC and metrics ports.
        startup_timeout_s: How long Triton (which warms HMR2 up) and the service may take.
        service_env: Extra ``TRACKER_*`` settings for the service.
        providers: ONNX Runtime execution providers of Triton's models (e.g.
            ``("CUDAExecutionProvider",)`` on a GPU); empty: the CPU's.

    Raises:
        StackError: A model is not built, or the service did not become ready.

    """
    local = BUILD / "triton_repository"
    missing = set(MODELS) - set(build_local_repository(repository, local, providers=providers))
    if missing:
        raise StackError(f"models not built: {', '.join(sorted(missing))}; run `make models`")
    http, grpc, metrics = triton_ports
    triton = LocalTritonServer(
        repository=local,
        models=tuple(MODELS),
        log_file=BUILD / "tritonserver.log",
        http_port=http,
        grpc_port=grpc,
        metrics_port=metrics,
        startup_timeout_s=startup_timeout_s,
    )
    with triton:
        env = {
            **os.environ,
            "TRACKER_HOST": "127.0.0.1",
            "TRACKER_PORT": str(port),
            "TRACKER_TRITON_URL": triton.grpc_url,
            "TRACKER_SMPL_FACES": str(repository / SMPL.name / "1" / SMPL_FACES_FILE),
            **(service_env or {}),
        }
        service_log = (BUILD / "tracker_service.log").open("wb")
        service = subprocess.Popen(
            [sys.executable, "-m", "tracker_service"], env=env, stdout=service_log,
            stderr=subprocess.STDOUT, cwd=REPO_ROOT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            try:
                ServiceClient(url).wait_ready(startup_timeout_s, process=service)
            except ClientError as error:
                raise StackError(f"{error} (log: {service_log.name})") from error
            log.info("tracker service ready at %s (log: %s)", url, service_log.name)
            yield url, triton, service
        finally:
            stop_process(service, STOP_TIMEOUT_S)
            service_log.close()


def stop_process(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """SIGTERM, wait up to ``timeout_s``, then kill (a child never outlives the stack)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("pid %d ignored SIGTERM for %.0f s; killing it", process.pid, timeout_s)
            process.kill()
            process.wait()
