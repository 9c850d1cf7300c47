"""The MOT command line: det.txt in, results out, ``--offline`` taken; bad sizes refused."""

from pathlib import Path

import numpy as np

from tests.unit.scripts.conftest import RunScript


def test_offline_run_writes_every_frame_and_a_summary(run_script: RunScript, tmp_path: Path):
    det, out = tmp_path / "det.txt", tmp_path / "out.txt"
    det.write_text("".join(
        f"{f},-1,{x},{y},40,100,{score},-1,-1,-1\n"
        for f in range(1, 13) if f != 6
        for x, y, score in ((100 + 5 * f, 50, 0.95), (400, 60, 0.9))
    ))  # fmt: skip
    result = run_script("track_mot", "--det", str(det), "--out", str(out), "--offline")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("12 frames, 2 tracks, ") and str(out) in result.stdout
    assert len(np.loadtxt(out, delimiter=",")) == 2 * 12  # frame 6 interpolated


def test_a_bad_image_size_is_refused_in_words(run_script: RunScript, tmp_path: Path):
    result = run_script("track_mot", "--det", "x", "--out", "y", "--image-size", "big")
    assert result.returncode == 2 and "expected WIDTHxHEIGHT, got 'big'" in result.stderr
