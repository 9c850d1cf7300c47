"""The GPU check's report, from the JSON its steps write (fields as the real runs write them)."""

import json

from tracker_tools import gpu_report as report
from tracker_tools.gpu_check import Outcome, Step

PER_CROP = {"machine": "m", "ONNX Runtime CUDA": {
    "1": [0.004, 0.002, 0.003], "8": [0.016, 0.016, 0.016],
    "setup_s": 21.5, "peak_rss_mb": 3100.0, "gpu_memory_mb": 5120.0,
}}  # fmt: skip
LATENCY = {"video": "runner.mp4 640x360 PNG", "frames": 140, "latency_ms": {"p50": 45.0,
           "p95": 60.0}, "triton_batch": {"hmr2": 1.0, "person_detector": 1.0}}  # fmt: skip
STACK = {"results": [{"latency": [
    {**LATENCY, "workers": 1, "fps": 20.0},
    {**LATENCY, "workers": 4, "fps": 50.0, "triton_batch": {"hmr2": 2.5, "person_detector": 3.0}},
]}]}  # fmt: skip
JOB = {"frames": 70, "fps": 1.0, "seconds": 71.0, "seconds_to_complete": 65.0,
       "triton_batch": {"hmr2": 4.0, "person_detector": 4.0}}  # fmt: skip
VIDEO = {"results": [{"job": JOB}]}


def reports(tmp_path):
    steps, outcomes = [], []
    for name, figures, status in [
        ("per crop: ONNX Runtime CUDA", PER_CROP, "ok"),
        ("per crop: ONNX Runtime TensorRT FP16", PER_CROP, "failed"),
        ("stack: frames one at a time and from a FIFO pool of 4", STACK, "ok"),
        ("stack: one whole-video job", VIDEO, "ok"),
    ]:
        path = tmp_path / f"{len(steps)}.json"
        path.write_text(json.dumps(figures))
        steps.append(Step(name, 10.0, ("true",), path))
        outcomes.append(Outcome(name, 10.0, 1.0, status))
    return report.read_reports(steps, outcomes)


def test_only_the_steps_that_succeeded_give_figures(tmp_path):
    found = reports(tmp_path)
    assert "per crop: ONNX Runtime TensorRT FP16" not in found
    rows = report.per_crop_rows(found)
    assert [(r["batch"], r["ms_per_crop"]) for r in rows] == [(1, 3.0), (8, 2.0)]
    assert rows[0]["crops_per_s"] == 1 / 0.003 and rows[1]["gpu_memory_mb"] == 5120.0


def test_stack_rows_and_goals(tmp_path):
    rows = report.stack_rows(reports(tmp_path))
    assert [r["run"] for r in rows] == ["one at a time", "FIFO pool of 4", "one whole-video job"]
    assert rows[1]["fps"] == 50.0 and rows[2]["seconds_to_complete"] == 65.0
    assert report.goals(rows) == [
        "per frame, one at a time: p50 45 ms, the seed's goal < 500 ms (met)",
        "a 140-frame video as one job: 130 s (scaled from 70 frames), the user's goal < 120 s "
        "(not met)",
    ]


def figures(tmp_path, cpu):
    found = reports(tmp_path)
    return {
        "cpu": cpu, "size": "tiny" if cpu else "full", "machine": "Test CPU, 16 cores",
        "gpus": [] if cpu else [{"name": "NVIDIA H200", "driver": "580.1", "memory_mib": "143771"}],
        "command": "python -m scripts.gpu_check", "date": "2026-12-04 16:00", "deadline_s": 600.0,
        "seconds": 540.0, "setup_s": 200.0, "versions": {".venv": {"torch": "2.13.0"}},
        "steps": [vars(Outcome("per crop: ONNX Runtime TensorRT FP16", 60.0, 60.1, "timed out",
                               "stopped after 60 s / building the engine"))],
        "reports": {**found, "float16 vs float32": {"input": "random crops", "crops": 2,
                    "providers": ["CUDAExecutionProvider"], "vertex_max_mm": 1.25,
                    "vertex_mean_mm": 0.5}},
        "per_crop": report.per_crop_rows(found), "stack": report.stack_rows(found),
        "dry_run": [{"group": ".venv: TensorRT", "command": "pip install …",
                     "error": "ERROR: No matching distribution"}],
    }  # fmt: skip


def test_gpu_page_names_the_gpu_and_gives_every_figure(tmp_path):
    text = report.markdown(figures(tmp_path, cpu=False))
    assert "GPU: NVIDIA H200 (driver 580.1, 143771 MiB)" in text and "No GPU" not in text
    assert "| per crop: ONNX Runtime TensorRT FP16 | 60 | 60.1 | timed out | stopped after" in text
    assert "vertices differ by 1.250 mm at most, 0.500 mm on average" in text
    assert "| ONNX Runtime CUDA | 8 | 2.0 | 500.0 | 125.0 | 5120 | 3100 | 21.5 |" in text
    assert "| FIFO pool of 4 | 140 | 45 | 60 | 50.00 | – | 2.50, 3.00 |" in text
    assert "cannot be resolved: ERROR: No matching distribution" in text
    summary = report.summary(figures(tmp_path, cpu=False))
    assert "GPU check (GPU): 540 s of 600" in summary and "timed out" in summary


def test_cpu_page_says_no_gpu_was_at_hand(tmp_path):
    text = report.markdown(figures(tmp_path, cpu=True))
    assert "# GPU check (CPU form)" in text and "**No GPU was at hand here.**" in text
    assert "GPU: none" in text and "| ONNX Runtime CUDA | 8 | 2.0 | 500.0 | – |" in text
