"""The PyTorch-only GPU check, on the CPU with the tiny network (GPU form: docs/gpu_pytorch.md)."""

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHARED
from tracker_tools import gpu_pytorch
from tracker_tools.gpu_pytorch import Options, Report, markdown, measure, vertex_difference_mm
from tracker_tools.hmr2.standin_smpl import make_standin, write_extra_regressor, write_npz


@pytest.fixture(scope="module")
def smpl(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("smpl")
    data = make_standin()
    write_npz(data, folder / "SMPL_NEUTRAL.npz")
    write_extra_regressor(data.joint_regressor_extra, folder / "SMPL_to_J19.pkl")
    return folder


def test_tiny_check_on_the_cpu_measures_every_mode_and_batch(smpl):
    options = Options(
        device="cpu", config="tiny", smpl=smpl, reference=None, batches=(1, 2), repeats=1,
        modes=("fp32", "tf32", "bf16", "fp16"), export=True,
    )  # fmt: skip
    report = measure(options)
    assert report.errors == {}
    assert [(r["mode"], r["batch"]) for r in report.speed] == [
        (mode, batch) for mode in ("fp32", "tf32", "bf16", "fp16") for batch in (1, 2)
    ]
    assert all(r["ms_per_crop"] > 0 and r["working_gpu_mb"] is None for r in report.speed)
    assert set(report.precision_mm) == {"tf32", "bf16", "fp16"}
    assert report.precision_mm["tf32"]["max"] == 0.0  # TF32 does not exist on the CPU
    assert 0 < report.precision_mm["fp16"]["mean"] <= report.precision_mm["fp16"]["max"] < 50
    assert report.onnx["provider"] == "CPUExecutionProvider" and report.onnx["export_s"] > 0
    text = markdown(report, "python -m scripts.gpu_pytorch --device cpu", "test machine")
    assert "| fp16 | 2 |" in text and "Failed steps" not in text and "Faithfulness" not in text


@pytest.mark.skipif(
    not (SHARED / "reference" / "hmr2").is_dir(), reason="the shared HMR2 reference data is absent"
)
def test_faithfulness_is_measured_against_the_official_outputs(smpl, monkeypatch):
    monkeypatch.setattr(gpu_pytorch, "environment", lambda device: {"torch": "test"})
    options = Options(
        device="cpu", config="tiny", smpl=smpl, reference=SHARED / "reference" / "hmr2",
        batches=(1,), repeats=1, modes=("fp32",), export=False,
    )  # fmt: skip
    report = measure(options)
    # The tiny network is not the released one: the differences are large, and reported.
    assert set(report.faithfulness) == {"float32", "float32 + TF32"}
    assert report.faithfulness["float32"]["backbone_tokens"] > 1e-3


def test_a_failing_step_is_reported_and_the_others_go_on():
    report = Report()
    with report.step("broken"):
        raise RuntimeError("no CUDA device")
    with report.step("fine"):
        report.setup_s["fine"] = 1.0
    assert report.errors == {"broken": "RuntimeError: no CUDA device"}
    assert "- broken: RuntimeError: no CUDA device" in markdown(report, "cmd", "host")


def test_vertex_difference_is_in_millimetres():
    baseline = np.zeros((1, 2, 3))
    moved = baseline.copy()
    moved[0, 0] = (0.003, 0.004, 0.0)  # 5 mm
    assert vertex_difference_mm(moved, baseline) == {
        "max": pytest.approx(5.0),
        "mean": pytest.approx(2.5),
    }
