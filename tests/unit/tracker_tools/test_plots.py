"""The benchmarks' pictures are drawn as PNG files from their figures."""

import cv2
import numpy as np

from tracker_tools import plots


def _image(path):
    return cv2.imread(str(path), cv2.IMREAD_COLOR)


def test_stage_chart_draws_every_size_with_its_caption(tmp_path):
    results = [
        {"hmr2": size, "latency": [
            {"video": "a.mp4", "stages_ms": {"decode": 2.0, "hmr2": scale}},
            {"video": "b.avi", "stages_ms": {"decode": 1.0, "hmr2": scale, "smpl": 0.5}},
        ]}
        for size, scale in (("tiny", 20.0), ("full", 600.0))
    ]  # fmt: skip
    out = plots.stage_chart(results, tmp_path / "stages.png", "machine; command")
    image = _image(out)
    assert out == tmp_path / "stages.png" and image.shape[1] > 1000  # two panels side by side
    assert (image < 128).any(axis=2).mean() > 0.01  # bars and text, not a blank page


def test_series_chart_shades_the_frames_and_draws_each_method(tmp_path):
    t = np.arange(60)
    truth = np.sin(t / 5)
    raw = truth + 0.2 * np.random.default_rng(0).normal(size=60)
    raw[20:30] = np.nan  # nothing answered
    out = plots.series_chart(
        [("angle", {"truth": truth, "raw": raw, "live": truth + 0.1, "offline": truth})],
        shaded=list(range(20, 30)), shade_label="hidden", title="t", x_label="frame",
        out=tmp_path / "series.png", caption="machine; command",
    )  # fmt: skip
    image = _image(out)
    red = (image[..., 2] > 150) & (image[..., 1] < 80) & (image[..., 0] < 80)  # raw: #b42318
    assert red.sum() > 50
    grey = np.all(np.abs(image.astype(int) - [0xDD, 0xD5, 0xD0]) < 25, axis=2)  # the shading
    assert grey.sum() > 1000
