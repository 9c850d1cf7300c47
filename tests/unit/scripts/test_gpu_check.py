"""The GPU check's command line: no GPU form without a GPU; the precision subcommand."""

import json

import pytest

from tests.unit.scripts.conftest import RunScript
from tests.unit.tracker_tools.test_gpu_check import _model
from tracker_tools.machine import gpus


def test_the_gpu_form_refuses_to_run_without_a_gpu_and_says_what_to_do(
    run_script: RunScript, tmp_path
):
    if gpus():
        pytest.skip("a GPU is here: the GPU form would run")
    result = run_script("gpu_check", "--out", str(tmp_path / "gpu.md"))
    assert result.returncode == 2, result.stderr
    assert "no NVIDIA GPU here" in result.stdout and not (tmp_path / "gpu.md").exists()


def test_precision_subcommand_writes_its_json(run_script: RunScript, tmp_path):
    for name, float16 in (("float32", False), ("float16", True)):
        (tmp_path / name / "hmr2" / "1").mkdir(parents=True)
        _model(tmp_path / name / "hmr2" / "1" / "model.onnx", float16)
    out = tmp_path / "precision.json"
    args = ["precision", str(tmp_path / "float32"), str(tmp_path / "float16"), "--out", str(out)]
    result = run_script("gpu_check", *args)
    assert result.returncode == 0, result.stderr
    written = json.loads(out.read_text())
    assert written == json.loads(result.stdout.splitlines()[-1])
    assert written["providers"] == ["CPUExecutionProvider"] and 0 < written["vertex_max_mm"] < 10
