"""The local stack without Docker: a real Triton server and the tracker service.

``make serve`` runs it in the foreground until Ctrl-C; ``scripts/demo.py`` and
``scripts/benchmark.py`` use :func:`local_stack`. Triton serves the local (Python backend)
repository derived from ``model_repository/``; the service runs as ``python -m
tracker_service`` in its own process, configured by ``TRACKER_*`` variables.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from scripts.model_repository import build_local_repository
from scripts.tiny_models import build_tiny_repository
from scripts.triton_server import LocalTritonServer
from tracker_service.model_spec import MODELS, SMPL, SMPL_FACES_FILE

log = logging.getLogger(__name__)
BUILD = Path("build")


def wait_healthy(url: str, service: subprocess.Popen, timeout_s: float) -> None:
    """Poll ``GET /health`` until ``ready``; fail early if the service process exits."""
    deadline = time.monotonic() + timeout_s
    reason = "no answer yet"
    while time.monotonic() < deadline:
        if service.poll() is not None:
            raise RuntimeError(f"the tracker service exited with code {service.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                health = json.load(response)
            if health["ready"]:
                return
            reason = health.get("error") or health["status"]
        except (urllib.error.URLError, ConnectionError) as exc:
            reason = str(exc)
        time.sleep(0.5)
    raise TimeoutError(f"the tracker service is not ready after {timeout_s:.0f} s: {reason}")


@contextmanager
def local_stack(
    *,
    repository: Path = Path("model_repository"),
    port: int = 5000,
    triton_ports: tuple[int, int, int] = (8000, 8001, 8002),
    startup_timeout_s: float = 900.0,
    service_env: dict[str, str] | None = None,
) -> Iterator[tuple[str, LocalTritonServer, subprocess.Popen]]:
    """Start Triton and the service; yield (service URL, Triton server, service process).

    Args:
        repository: The production model repository holding the exported models.
        port: The service's HTTP port.
        triton_ports: Triton's HTTP, gRPC and metrics ports.
        startup_timeout_s: How long Triton (which warms HMR2 up) and the service may take.
        service_env: Extra ``TRACKER_*`` settings for the service.
    """
    local = BUILD / "triton_repository"
    missing = set(MODELS) - set(build_local_repository(repository, local))
    if missing:
        raise SystemExit(f"models not built: {', '.join(sorted(missing))}; run `make models`")
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
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, service, startup_timeout_s)
            log.info("tracker service ready at %s (log: %s)", url, service_log.name)
            yield url, triton, service
        finally:
            if service.poll() is None:
                service.send_signal(signal.SIGTERM)
                service.wait(timeout=60)
            service_log.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the local stack in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--repository", type=Path, default=Path("model_repository"))
    parser.add_argument(
        "--hmr2", choices=["full", "tiny"], default="full",
        help="tiny: serve the tiny model set (scripts/tiny_models.py) instead of --repository",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    repository = args.repository
    if args.hmr2 == "tiny":
        repository = build_tiny_repository(BUILD / "tiny_repository")
    with local_stack(repository=repository, port=args.port) as (url, triton, service):
        print(f"POST {url}/pose/hybrid  GET {url}/health  GET {url}/metrics")
        print(f"Triton: gRPC {triton.grpc_url}, metrics {triton.metrics_url}; Ctrl-C stops")
        try:
            service.wait()
        except KeyboardInterrupt:
            log.info("stopping")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
