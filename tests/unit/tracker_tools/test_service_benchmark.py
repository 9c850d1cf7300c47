"""The end-to-end benchmark's arithmetic and report (its runs need the whole stack)."""

import base64

from tests.conftest import shared_path
from tracker_service.decode import image_size
from tracker_tools.client import scrape as page
from tracker_tools.service_benchmark import load_video, markdown, stage_ms


def test_stage_times_are_per_frame_deltas_of_the_histogram_sums():
    text = """# TYPE tracker_stage_seconds histogram
tracker_stage_seconds_sum{{stage="decode"}} {decode}
tracker_stage_seconds_count{{stage="decode"}} 1
tracker_stage_seconds_sum{{stage="smpl"}} {smpl}
tracker_stage_seconds_count{{stage="smpl"}} 1
"""
    before = page(text.format(decode=1.0, smpl=0.0))
    after = page(text.format(decode=1.5, smpl=0.1))
    stages = stage_ms(before, after, frames=10)
    assert stages.keys() == {"decode", "smpl"}
    assert abs(stages["decode"] - 50.0) < 1e-9 and abs(stages["smpl"] - 10.0) < 1e-9


def test_report_names_the_machine_and_judges_the_targets():
    run = {
        "video": "runner.mp4 1920x1080", "frames": 2, "people_mean": 1.0, "people_max": 1,
        "latency_ms": {"mean": 52.0, "p50": 50.0, "p95": 60.0, "p99": 61.0},
        "stages_ms": {"decode": 4.0, "detect": 10.0, "hmr2": 30.0, "encode": 1.0},
        "own_work_ms": 5.0, "triton_ms": 40.0, "answer_ms": 1.0,
        "answer_bytes_median": 419_000, "answer_bytes_max": 420_000,
    }  # fmt: skip
    throughput = [
        {"sessions": 1, "frames": 8, "fps": 10.0, "cpu_busy": 0.5, "triton_batch": {"hmr2": 1.0}},
        {"sessions": 8, "frames": 64, "fps": 25.0, "cpu_busy": 1.0, "triton_batch": {"hmr2": 3.0}},
    ]
    result = {
        "hmr2": "tiny", "latency": [run], "throughput_video": "runner.mp4",
        "throughput": throughput, "memory": {"service_peak_mb": 300.0, "triton_peak_mb": 800.0},
    }  # fmt: skip
    text = markdown([result], "python -m scripts.benchmark --hmr2 tiny", "Test CPU, 2 cores")
    assert "Machine: Test CPU, 2 cores" in text and "## HMR2 tiny" in text
    assert "runner.mp4 1920x1080 (1.0 people): 5.0 ms, target ≤ 10 ms (met)" in text
    assert "8 sessions: 2.50× the frames/s of one, HMR2 batch 3.00; target ≥ 2× and > 1" in text


def test_backend_frames_are_640x360_png():
    shared_path("media", "runner.mp4")
    label, frames = load_video("runner.mp4:backend", 2)
    assert label == "runner.mp4 640x360 PNG" and len(frames) == 2
    data = base64.b64decode(frames[0])
    assert data.startswith(b"\x89PNG") and image_size(data) == (640, 360)
    assert load_video("runner.mp4", 1)[0] == "runner.mp4 1920x1088 JPG"


def test_a_fifo_pool_run_is_labelled_apart_from_the_one_at_a_time_run():
    run = {
        "video": "runner.mp4 640x360 PNG", "frames": 8, "people_mean": 1.0, "people_max": 1,
        "latency_ms": {"mean": 50.0, "p50": 50.0, "p95": 60.0, "p99": 61.0},
        "stages_ms": {"decode": 4.0}, "own_work_ms": 5.0, "triton_ms": 40.0, "answer_ms": 1.0,
        "answer_bytes_median": 1000, "answer_bytes_max": 1000,
    }  # fmt: skip
    result = {
        "hmr2": "tiny", "latency": [{**run, "workers": 1}, {**run, "workers": 4}],
        "throughput_video": "runner.mp4", "memory": {"service_peak_mb": 1.0, "triton_peak_mb": 1.0},
        "throughput": [{"sessions": 1, "frames": 2, "fps": 1.0, "cpu_busy": 0.5,
                        "triton_batch": {}}],
    }  # fmt: skip
    lines = markdown([result], "c", "m").splitlines()
    assert [line.split(" | ")[0] for line in lines if line.startswith("| runner.mp4")] == [
        "| runner.mp4 640x360 PNG", "| runner.mp4 640x360 PNG, FIFO pool of 4"
    ]
    assert "| stage | runner.mp4 640x360 PNG | runner.mp4 640x360 PNG, FIFO pool of 4 |" in lines
