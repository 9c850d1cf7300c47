"""The local tritonserver: correct outputs, dynamic batching, clear errors."""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from tracker_service.model_spec import MODELS, ModelSpec
from tracker_tools.model_repository import (
    ONNX_FILENAME,
    VERSION,
    build_local_repository,
    write_production_repository,
)
from tracker_tools.triton_server import LocalTritonServer, TritonServerError

pytestmark = pytest.mark.integration

#: The request timeout of every call (gRPC's default is far too long).
TIMEOUT_S = 30.0
CONCURRENT_CLIENTS = 16
REQUESTS_PER_CLIENT = 4


@pytest.fixture(scope="module")
def client(triton_server: LocalTritonServer) -> Iterator[grpcclient.InferenceServerClient]:
    with grpcclient.InferenceServerClient(triton_server.grpc_url) as c:
        yield c


def _random_inputs(spec: ModelSpec, batch: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    inputs = {}
    for t in spec.inputs:
        if np.issubdtype(t.np_dtype, np.integer):
            inputs[t.name] = rng.integers(0, 256, (batch, *t.dims)).astype(t.np_dtype)
        else:
            inputs[t.name] = rng.normal(size=(batch, *t.dims)).astype(t.np_dtype)
    return inputs


def _infer(
    client: grpcclient.InferenceServerClient, spec: ModelSpec, inputs: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    requests = []
    for t in spec.inputs:
        tensor = grpcclient.InferInput(t.name, list(inputs[t.name].shape), t.client_dtype)
        tensor.set_data_from_numpy(inputs[t.name])
        requests.append(tensor)
    result = client.infer(spec.name, requests, client_timeout=TIMEOUT_S)
    return {name: result.as_numpy(name) for name in spec.output_names}


def _metric(text: str, name: str, model: str) -> float:
    pattern = rf'^{name}\{{[^}}]*model="{re.escape(model)}"[^}}]*\}} (\S+)$'
    values = [float(v) for v in re.findall(pattern, text, flags=re.MULTILINE)]
    assert values, f"no {name} for model {model} in metrics"
    return sum(values)


def _counts(server: LocalTritonServer, model: str) -> tuple[float, float]:
    with urllib.request.urlopen(server.metrics_url, timeout=TIMEOUT_S) as response:
        text = response.read().decode()
    return _metric(text, "nv_inference_count", model), _metric(
        text, "nv_inference_exec_count", model
    )


def test_every_model_is_served(triton_server: LocalTritonServer) -> None:
    assert sorted(triton_server.models) == sorted(MODELS)


def test_outputs_equal_onnx_runtime(
    client: grpcclient.InferenceServerClient, production_repository: Path
) -> None:
    for spec in MODELS.values():
        session = ort.InferenceSession(
            str(production_repository / spec.name / VERSION / ONNX_FILENAME),
            providers=["CPUExecutionProvider"],
        )
        inputs = _random_inputs(spec, batch=3, seed=0)
        expected = dict(
            zip(spec.output_names, session.run(list(spec.output_names), inputs), strict=True)
        )

        outputs = _infer(client, spec, inputs)

        for name in spec.output_names:
            assert outputs[name].dtype == expected[name].dtype, name
            np.testing.assert_allclose(
                outputs[name], expected[name], rtol=1e-5, atol=1e-5, err_msg=f"{spec.name}.{name}"
            )


def test_concurrent_clients_are_batched(triton_server: LocalTritonServer) -> None:
    spec = MODELS["hmr2"]
    count_before, exec_before = _counts(triton_server, spec.name)
    barrier = threading.Barrier(CONCURRENT_CLIENTS)
    errors: list[BaseException] = []

    def run(seed: int) -> None:
        try:
            with grpcclient.InferenceServerClient(triton_server.grpc_url) as own_client:
                barrier.wait(timeout=TIMEOUT_S)
                for k in range(REQUESTS_PER_CLIENT):
                    _infer(own_client, spec, _random_inputs(spec, batch=1, seed=seed * 100 + k))
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(CONCURRENT_CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors

    expected = CONCURRENT_CLIENTS * REQUESTS_PER_CLIENT
    deadline = time.monotonic() + 5.0  # the metrics endpoint may lag the last answers a little
    while True:
        count_after, exec_after = _counts(triton_server, spec.name)
        inferences = count_after - count_before
        executions = exec_after - exec_before
        if inferences >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert inferences == expected
    assert inferences > executions, (
        f"{inferences:.0f} inferences in {executions:.0f} executions: no request was batched"
    )


@pytest.mark.parametrize("change", ["shape", "dtype"])
def test_malformed_request_is_rejected_and_server_keeps_serving(
    client: grpcclient.InferenceServerClient, change: str
) -> None:
    spec = MODELS["hmr2"]
    inputs = _random_inputs(spec, batch=1, seed=1)
    bad = spec.inputs[0]
    if change == "shape":
        data = np.zeros((1, *bad.dims[:-1], bad.dims[-1] + 1), dtype=bad.np_dtype)
        dtype = bad.client_dtype
        message = rf"unexpected shape for input '{bad.name}' for model '{spec.name}'"
    else:
        data = inputs[bad.name].astype(np.float64)
        dtype = "FP64"
        message = rf"data-type is 'FP64', but model '{spec.name}' expects '{bad.client_dtype}'"
    requests = []
    for t in spec.inputs:
        if t is bad:
            tensor = grpcclient.InferInput(t.name, list(data.shape), dtype)
            tensor.set_data_from_numpy(data)
        else:
            tensor = grpcclient.InferInput(t.name, list(inputs[t.name].shape), t.client_dtype)
            tensor.set_data_from_numpy(inputs[t.name])
        requests.append(tensor)

    with pytest.raises(InferenceServerException, match=message):
        client.infer(spec.name, requests, client_timeout=TIMEOUT_S)

    outputs = _infer(client, spec, inputs)
    assert {t.name: outputs[t.name].shape for t in spec.outputs} == {
        t.name: (1, *t.dims) for t in spec.outputs
    }


def test_second_start_is_refused(triton_server: LocalTritonServer) -> None:
    with pytest.raises(TritonServerError, match="already started"):
        triton_server.start()
    assert triton_server.running


def test_model_that_fails_to_load_stops_the_start_with_its_log(
    local_server_factory: Callable[..., LocalTritonServer], tmp_path: Path
) -> None:
    production = tmp_path / "production"
    write_production_repository(production)
    broken = production / "smpl" / VERSION / ONNX_FILENAME
    broken.parent.mkdir()
    broken.write_bytes(b"not an onnx graph")
    repository = tmp_path / "local"
    server = local_server_factory(
        repository, build_local_repository(production, repository), tmp_path / "server.log"
    )

    with pytest.raises(TritonServerError, match=r"exited with code \d+ during startup") as error:
        with server:
            pass

    assert "smpl" in str(error.value) and "model.onnx" in str(error.value)
    assert not server.running
