"""A real local ``tritonserver`` for the integration tests, started once per session.

The server serves a local repository derived from the fixture ``production_repository``
(the production layout, ``<name>/config.pbtxt`` + ``<name>/1/model.onnx``) holding the
real exported graphs.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from scripts.export_hmr2 import (
    ServedHMR2,
    ServedSMPL,
    build_network,
    export_model,
    random_crops,
    write_faces,
)
from scripts.hmr2.body_model import BodyModel
from scripts.hmr2.network import HMR2Config
from scripts.make_standin_smpl import make_standin
from scripts.model_repository import (
    ONNX_FILENAME,
    VERSION,
    build_local_repository,
    write_production_repository,
)
from scripts.triton_server import DEFAULT_VENV, LocalTritonServer
from tracker_service.model_spec import HMR2, PERSON_DETECTOR, SMPL

REPO_ROOT = Path(__file__).resolve().parents[2]
DETECTOR_ONNX = REPO_ROOT / "model_repository" / PERSON_DETECTOR.name / "1" / "model.onnx"

#: How long the server may take to load every model and become ready.
STARTUP_TIMEOUT_S = 120.0


def export_tiny_models(root: Path) -> None:
    """Export the real HMR2 graph (tiny configuration, generated weights) and body model.

    Same code as the full-size export, narrower and shallower so that tests run in seconds;
    the body model is the generated stand-in with the official SMPL layout.
    """
    standin = make_standin()
    write_faces(standin.faces, root)
    body_model = BodyModel(standin).eval()
    network = build_network(HMR2Config.tiny(), weights="generated")
    crops = (random_crops(2),)
    served = ServedHMR2(network, body_model)
    export_model(served, HMR2, crops, root / HMR2.name / VERSION / ONNX_FILENAME)
    params = tuple(t.detach() for t in served(*crops)[:3])
    export_model(ServedSMPL(body_model), SMPL, params, root / SMPL.name / VERSION / ONNX_FILENAME)


@pytest.fixture(scope="session")
def production_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The production repository the tests serve: every model, real graphs.

    HMR2 and the body model are exported here (tiny HMR2); the offline person detector is
    the one ``make models`` built into ``model_repository/`` (required: building it needs
    TensorFlow, in its own environment).
    """
    detector = DETECTOR_ONNX
    if not detector.exists():
        reason = f"{detector} is missing: run `make models` to build the offline detector"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("production_repository")
    write_production_repository(root)
    export_tiny_models(root)
    (root / PERSON_DETECTOR.name / VERSION).mkdir()
    for item in detector.parent.iterdir():
        (root / PERSON_DETECTOR.name / VERSION / item.name).symlink_to(item.resolve())
    return root


@pytest.fixture(scope="session")
def triton_venv() -> Path:
    """The Triton environment; skips when it is missing, except in CI where that fails."""
    if not DEFAULT_VENV.exists():
        reason = f"{DEFAULT_VENV} is missing: run `make install` to create it"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return DEFAULT_VENV


def _free_ports(count: int) -> list[int]:
    """Ports free right now (held open together, so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


ServerFactory = Callable[[Path, Sequence[str], Path], LocalTritonServer]


@pytest.fixture(scope="session")
def local_server_factory(triton_venv: Path) -> ServerFactory:
    """Build (not start) a ``LocalTritonServer`` on free ports: (repository, models, log_file)."""

    def factory(repository: Path, models: Sequence[str], log_file: Path) -> LocalTritonServer:
        http_port, grpc_port, metrics_port = _free_ports(3)
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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """Attach the server's log tail to the report of a failing test that used it."""
    report = yield
    server = getattr(item, "funcargs", {}).get("triton_server")
    if report.failed and isinstance(server, LocalTritonServer):
        report.sections.append(("tritonserver log (tail)", server.log_tail(80)))
    return report
