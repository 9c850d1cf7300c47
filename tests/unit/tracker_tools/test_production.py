"""Fetching the official weights for the production export (the export itself: make models)."""

import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.unit.tracker_tools.test_weights import _save_standin
from tracker_tools.production import fetch_weights
from tracker_tools.weights import FetchError


def _given(tmp_path: Path) -> tuple[Path, Path]:
    """A checkpoint and a regressor of the official formats (no download)."""
    checkpoint, regressor = tmp_path / "hmr2.ckpt", tmp_path / "J19.pkl"
    with zipfile.ZipFile(checkpoint, "w") as z:
        z.writestr("archive/data.pkl", b"x")
    regressor.write_bytes(pickle.dumps(np.zeros((19, 6890), np.float32)))
    return checkpoint, regressor


def test_given_files_are_taken_as_they_are_beside_the_users_smpl(tmp_path: Path) -> None:
    weights_dir = tmp_path / "weights"
    _save_standin(weights_dir / "smpl" / "SMPL_NEUTRAL.npz")
    checkpoint, regressor = _given(tmp_path)
    weights = fetch_weights(weights_dir, checkpoint=checkpoint, extra_regressor=regressor)
    assert weights.smpl == weights_dir / "smpl" / "SMPL_NEUTRAL.npz"
    assert (weights.checkpoint.path, weights.regressor.path) == (checkpoint, regressor)
    assert len(weights.checkpoint.sha256) == 64


def test_without_smpl_nothing_is_fetched_and_the_error_says_where_to_get_it(
    tmp_path: Path,
) -> None:
    with pytest.raises(FetchError, match="register at https://smpl.is.tue.mpg.de"):
        fetch_weights(tmp_path, timeout_s=0.001)
    assert list(tmp_path.iterdir()) == []
