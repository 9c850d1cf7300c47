"""A real local ``tritonserver`` for the integration tests, started once per session.

The server serves a local repository derived from the fixture ``production_repository``
(the production layout, ``<name>/config.pbtxt`` + ``<name>/1/model.onnx``) holding the
real exported graphs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_service import LiveService, service_settings
from tracker_tools.model_repository import (
    ONNX_FILENAME,
    VERSION,
    build_local_repository,
)
from tracker_tools.tiny_models import DETECTOR_DIR, build_tiny_repository
from tracker_tools.triton_server import DEFAULT_VENV, LocalTritonServer, free_ports

DETECTOR_ONNX = DETECTOR_DIR / "1" / "model.onnx"

#: How long the server may take to load every model and become ready.
STARTUP_TIMEOUT_S = 120.0


@pytest.fixture(scope="session")
def production_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The production repository the tests serve: every model, real graphs.

    HMR2 and the body model are exported here (tiny HMR2); the offline person detector is
    the one ``make models`` built into ``model_repository/`` (required: building it needs
    TensorFlow, in its own environment).
    """
    if not DETECTOR_ONNX.exists():
        reason = f"{DETECTOR_ONNX} is missing: run `make models` to build the offline detector"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return build_tiny_repository(tmp_path_factory.mktemp("production_repository"))


@pytest.fixture(scope="session")
def triton_venv() -> Path:
    """The Triton environment; skips when it is missing, except in CI where that fails."""
    if not DEFAULT_VENV.exists():
        reason = f"{DEFAULT_VENV} is missing: run `make install` to create it"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return DEFAULT_VENV


ServerFactory = Callable[[Path, Sequence[str], Path], LocalTritonServer]


@pytest.fixture(scope="session")
def local_server_factory(triton_venv: Path) -> ServerFactory:
    """Build (not start) a ``LocalTritonServer`` on free ports: (repository, models, log_file)."""

    def factory(repository: Path, models: Sequence[str], log_file: Path) -> LocalTritonServer:
        http_port, grpc_port, metrics_port = free_ports(3)
        return LocalTritonServer(
            repository=repository,
            models=models,
            log_file=log_file,
            http_port=http_port,
            grpc_port=grpc_port,
            metrics_port=metrics_port,
            startup_timeout_s=STARTUP_TIMEOUT_S,
            venv=triton_venv,
        )

    return factory


@pytest.fixture(scope="session")
def triton_server(
    local_server_factory: ServerFactory,
    production_repository: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalTritonServer]:
    """A ready ``tritonserver`` serving every model of ``production_repository``."""
    repository = tmp_path_factory.mktemp("triton_repository")
    models = build_local_repository(production_repository, repository, intra_op_threads=1)
    assert models, f"no model in {production_repository} has {VERSION}/{ONNX_FILENAME}"
    log_file = tmp_path_factory.mktemp("triton_log") / "tritonserver.log"
    with local_server_factory(repository, models, log_file) as server:
        yield server  # a failed start raises with the server's log tail


JobService = Callable[..., AbstractContextManager[LiveService]]


@pytest.fixture(scope="session")
def job_service(
    triton_server: LocalTritonServer,
    production_repository: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> JobService:
    """``with job_service(name, **settings) as live``: the service with its own job store.

    The service runs on the session's Triton, its job database and folder in a fresh
    temporary folder named ``name``; ``settings`` override the others (``job_max_frames``…).
    It stops when the block ends.
    """

    @contextmanager
    def start(name: str, **overrides: Any) -> Iterator[LiveService]:
        root = tmp_path_factory.mktemp(name)
        live = LiveService(
            service_settings(
                triton_server, production_repository,
                job_database=str(root / "jobs.sqlite"), job_data_dir=str(root / "jobs"),
                **overrides,
            )  # fmt: skip
        )
        try:
            yield live
        finally:
            live.stop()

    return start


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """Attach the server's log tail to the report of a failing test that used it."""
    report = yield
    server = getattr(item, "funcargs", {}).get("triton_server")
    if report.failed and isinstance(server, LocalTritonServer):
        report.sections.append(("tritonserver log (tail)", server.log_tail(80)))
    return report
