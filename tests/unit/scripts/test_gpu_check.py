"""The GPU check's command line: no GPU form without a GPU; the precision subcommand."""

import json

import pytest

from scripts.gpu_check import main
from tests.unit.tracker_tools.test_gpu_check import _model
from tracker_tools import gpu_check as check
from tracker_tools.machine import gpus


def test_the_gpu_form_refuses_to_run_without_a_gpu_and_says_what_to_do(capsys, tmp_path):
    if gpus():
        pytest.skip("a GPU is here: the GPU form would run")
    assert main(["--out", str(tmp_path / "gpu.md")]) == 2
    assert "no NVIDIA GPU here" in capsys.readouterr().out and not (tmp_path / "gpu.md").exists()


def test_precision_subcommand_writes_its_json(tmp_path, monkeypatch):
    monkeypatch.setattr(check, "REFERENCE_INPUT", tmp_path / "absent.npz")
    for name, float16 in (("float32", False), ("float16", True)):
        (tmp_path / name / "hmr2" / "1").mkdir(parents=True)
        _model(tmp_path / name / "hmr2" / "1" / "model.onnx", float16)
    out = tmp_path / "precision.json"
    args = ["precision", str(tmp_path / "float32"), str(tmp_path / "float16"), "--out", str(out)]
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert result["providers"] == ["CPUExecutionProvider"] and 0 < result["vertex_max_mm"] < 10
