"""Generic Triton Python-backend model: runs ``model.onnx`` with ONNX Runtime.

Copied as ``<repository>/<model>/1/model.py`` by ``tracker_tools.model_repository``
for the local CPU server, where Triton has no ONNX Runtime backend. It runs
inside Triton's Python stub (the ``.venv-triton`` interpreter, numpy<2) and
imports only numpy, onnxruntime and ``triton_python_backend_utils``.

Triton's dynamic batcher hands ``execute`` several requests at once; they are
concatenated along the batch axis, run in one ONNX Runtime call and split back,
which is what the ORT backend does in production.

The model parameter ``intra_op_thread_count`` (as in the ORT backend) sets the
ONNX Runtime thread count; absent or ``0`` keeps ONNX Runtime's default. The parameter
``onnx_providers`` (comma-separated, e.g. ``CUDAExecutionProvider``: ``make gpu-check`` on a
GPU) names ONNX Runtime's execution providers; absent, the CPU's.
"""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

THREADS_PARAMETER = "intra_op_thread_count"
PROVIDERS_PARAMETER = "onnx_providers"


class TritonPythonModel:
    """Runs the ONNX graph beside this file for batches of Triton requests."""

    def initialize(self, args: dict[str, str]) -> None:
        """Load ``model.onnx`` and check it matches the model config.

        Args:
            args: Triton's model arguments; ``model_config`` is the config as JSON.

        Raises:
            RuntimeError: numpy 2 in the Triton environment.
            ValueError: The graph's input or output names differ from the config's.

        """
        if int(np.__version__.split(".")[0]) >= 2:
            # Measured with tritonserver 2.51: its Python backend then returns empty tensors.
            raise RuntimeError(
                f"numpy {np.__version__} in the Triton environment: the Python backend "
                "exchanges tensors correctly only with numpy<2; install numpy<2 there"
            )
        config = json.loads(args["model_config"])
        self._name = config["name"]
        self._inputs = [t["name"] for t in config["input"]]
        self._outputs = [
            (t["name"], pb_utils.triton_string_to_numpy(t["data_type"])) for t in config["output"]
        ]
        parameters = config.get("parameters", {})
        threads = int(parameters.get(THREADS_PARAMETER, {}).get("string_value") or 0)
        providers = parameters.get(PROVIDERS_PARAMETER, {}).get("string_value") or ""

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        # Idle ONNX Runtime threads sleep instead of spinning: on a CPU machine they would
        # take the cores from the tracker service and the other models between runs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        path = Path(__file__).with_name("model.onnx")
        self._session = ort.InferenceSession(
            str(path),
            sess_options=options,
            providers=providers.split(",") if providers else ["CPUExecutionProvider"],
        )
        active = self._session.get_providers()
        if providers and not set(providers.split(",")) <= set(active):
            # ONNX Runtime falls back to the CPU with a mere warning when CUDA cannot load.
            raise RuntimeError(f"{path}: ONNX Runtime runs {active}, not {providers}")
        graph_inputs = [i.name for i in self._session.get_inputs()]
        graph_outputs = {o.name for o in self._session.get_outputs()}
        if sorted(graph_inputs) != sorted(self._inputs):
            raise ValueError(
                f"{path}: graph inputs {graph_inputs} differ from config inputs {self._inputs}"
            )
        missing = [name for name, _ in self._outputs if name not in graph_outputs]
        if missing:
            raise ValueError(f"{path}: config outputs {missing} are not graph outputs")
        pb_utils.Logger.log_info(
            f"{self._name}: loaded {path} (ONNX Runtime {ort.__version__}, "
            f"numpy {np.__version__}, threads={threads}, {self._session.get_providers()})"
        )

    def execute(self, requests: list) -> list:
        """Run all requests as one batch and answer each with its slice.

        Args:
            requests: ``pb_utils.InferenceRequest`` objects, already validated by
                Triton against the config (names, data types, shapes).

        Returns:
            One ``pb_utils.InferenceResponse`` per request, in order; on failure
            each carries a ``pb_utils.TritonError``.

        """
        try:
            per_request = [
                [pb_utils.get_input_tensor_by_name(r, name).as_numpy() for name in self._inputs]
                for r in requests
            ]
            sizes = [arrays[0].shape[0] for arrays in per_request]
            feed = {
                name: np.concatenate([arrays[i] for arrays in per_request])
                for i, name in enumerate(self._inputs)
            }
            results = self._session.run([name for name, _ in self._outputs], feed)
        except Exception as error:  # noqa: BLE001 - every failure becomes a Triton error
            message = f"{self._name}: inference failed: {type(error).__name__}: {error}"
            pb_utils.Logger.log_error(message)
            return [
                pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message))
                for _ in requests
            ]

        bounds = np.cumsum(sizes)[:-1]
        split = [np.split(result, bounds) for result in results]
        return [
            pb_utils.InferenceResponse(
                output_tensors=[
                    pb_utils.Tensor(name, np.ascontiguousarray(parts[k], dtype=dtype))
                    for (name, dtype), parts in zip(self._outputs, split, strict=True)
                ]
            )
            for k in range(len(requests))
        ]

    def finalize(self) -> None:
        """Release the ONNX Runtime session."""
        self._session = None
