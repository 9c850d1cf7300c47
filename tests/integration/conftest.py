"""A real local ``tritonserver`` for the integration tests, started once per session.

The server serves a local repository built from the fixture
``production_repository`` (a folder in the production layout,
``<name>/config.pbtxt`` + ``<name>/1/model.onnx``). Override that fixture to
serve the exported models; the one here is for testing the infrastructure.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from scripts.model_repository import (
    ONNX_FILENAME,
    VERSION,
    build_local_repository,
    write_production_repository,
)
from scripts.triton_server import DEFAULT_VENV, LocalTritonServer
from tracker_service.model_spec import MODELS, ModelSpec, TensorSpec

#: How long the server may take to load every model and become ready.
STARTUP_TIMEOUT_S = 120.0


def _value_info(tensor: TensorSpec) -> onnx.ValueInfoProto:
    """Graph input/output with a symbolic batch axis."""
    elem = helper.np_dtype_to_tensor_dtype(tensor.np_dtype)
    return helper.make_tensor_value_info(tensor.name, elem, ["batch", *tensor.dims])


def linear_stand_in(spec: ModelSpec, path: Path, *, seed: int = 0) -> None:
    """Write a small real ONNX graph with the spec's exact inputs and outputs.

    INFRASTRUCTURE TEST ONLY: every output is a random linear map of all the
    (float) inputs, flattened and concatenated; it has no meaning. Weights are
    stored as external data beside the model, as for the full-size hmr2.
    """
    if any(t.dtype != "TYPE_FP32" for t in spec.inputs):
        raise ValueError(f"{spec.name}: the linear stand-in needs FP32 inputs")
    rng = np.random.default_rng(seed)
    features = sum(math.prod(t.dims) for t in spec.inputs)
    nodes = [helper.make_node("Flatten", [t.name], [f"{t.name}_in"], axis=1) for t in spec.inputs]
    nodes.append(
        helper.make_node("Concat", [f"{t.name}_in" for t in spec.inputs], ["features"], axis=1)
    )
    initializers = []
    for t in spec.outputs:
        size = math.prod(t.dims)
        weight = rng.normal(0.0, 1.0 / math.sqrt(features), (features, size)).astype(np.float32)
        initializers += [
            numpy_helper.from_array(weight, f"{t.name}_weight"),
            numpy_helper.from_array(np.array([-1, *t.dims], dtype=np.int64), f"{t.name}_shape"),
        ]
        nodes += [
            helper.make_node("MatMul", ["features", f"{t.name}_weight"], [f"{t.name}_out"]),
            helper.make_node("Reshape", [f"{t.name}_out", f"{t.name}_shape"], [t.name]),
        ]

    graph = helper.make_graph(
        nodes,
        f"{spec.name}_infrastructure_stand_in",
        [_value_info(t) for t in spec.inputs],
        [_value_info(t) for t in spec.outputs],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, path, save_as_external_data=True, location=f"{path.name}.data")


@pytest.fixture(scope="session")
def production_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A production-layout repository to serve.

    INFRASTRUCTURE TEST ONLY: the generated configs of every model, and a
    random linear stand-in graph (``linear_stand_in``) for ``smpl`` only, so
    only ``smpl`` is served. Override this fixture with the exported models.
    """
    root = tmp_path_factory.mktemp("production_repository")
    write_production_repository(root)
    linear_stand_in(MODELS["smpl"], root / "smpl" / VERSION / ONNX_FILENAME)
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
