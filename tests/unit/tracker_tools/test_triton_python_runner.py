"""The local Python-backend runner's ONNX Runtime session options (without Triton)."""

import importlib
import json
import sys
import types

import numpy as np
import pytest

from tracker_tools.model_repository import PROVIDERS_PARAMETER


class Recorded(Exception):
    """Raised by the fake session once it has recorded the options."""


def test_idle_onnx_runtime_threads_sleep_instead_of_spinning(monkeypatch):
    ort = pytest.importorskip("onnxruntime")
    utils = types.ModuleType("triton_python_backend_utils")
    utils.triton_string_to_numpy = lambda name: np.float32
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", utils)
    runner = importlib.import_module("tracker_tools.triton_python_runner")
    monkeypatch.setattr(runner.np, "__version__", "1.26.4")  # the Triton environment's numpy
    seen = {}

    def session(path, sess_options, providers):
        seen["options"], seen["providers"] = sess_options, providers
        raise Recorded

    monkeypatch.setattr(runner.ort, "InferenceSession", session)
    config = {"name": "m", "input": [], "output": [],
              "parameters": {"intra_op_thread_count": {"string_value": "2"}}}
    with pytest.raises(Recorded):
        runner.TritonPythonModel().initialize({"model_config": json.dumps(config)})
    options = seen["options"]
    assert isinstance(options, ort.SessionOptions) and options.intra_op_num_threads == 2
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert seen["providers"] == ["CPUExecutionProvider"]  # no onnx_providers parameter

    config["parameters"][PROVIDERS_PARAMETER] = {"string_value": "CUDAExecutionProvider"}
    with pytest.raises(Recorded):
        runner.TritonPythonModel().initialize({"model_config": json.dumps(config)})
    assert seen["providers"] == ["CUDAExecutionProvider"]
