"""The compose check's report (the check itself needs Docker: ``make test-compose``)."""

from tracker_tools.compose_check import markdown


def test_the_figures_are_the_readmes_table_naming_the_machine() -> None:
    figures = {
        "machine": "AMD EPYC, 2 cores", "frames": 60, "total_s": 301.4,
        "tracker_image_mb": 812.3, "triton_image_mb": 2901.0, "build_cache": "layers cached",
        "build_s": 12.2, "up_to_ready_s": 31.26, "recovered_s": 14.04, "stop_s": 1.25,
        "containers_ms": {"p50": 120.4, "p95": 180.6}, "local_ms": {"p50": 110.0, "p95": 150.2},
    }  # fmt: skip
    lines = markdown(figures).splitlines()
    assert lines[0].startswith("Machine: AMD EPYC, 2 cores; `make test-compose` (60 frames")
    assert lines[0].endswith("total 301 s.")
    assert "| tracker image (`docker/tracker.Dockerfile`) | 812 MB |" in lines
    assert "| build of both images (layers cached) | 12 s |" in lines
    assert "| per frame through the containers, p50 / p95 | 120 / 181 ms |" in lines
    assert "| Triton killed: tracker answering again after | 14.0 s |" in lines
