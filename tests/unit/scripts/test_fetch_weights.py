"""The exporter's command line: ``--fetch-only`` with given files, and no SMPL in words."""

from pathlib import Path

from tests.unit.scripts.conftest import RunScript
from tests.unit.tracker_tools.test_production import _given
from tests.unit.tracker_tools.test_weights import _save_standin


def test_fetch_only_with_given_files(run_script: RunScript, tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    _save_standin(weights / "smpl" / "SMPL_NEUTRAL.npz")
    checkpoint, regressor = _given(tmp_path)
    result = run_script("fetch_weights", "--weights-dir", str(weights), "--fetch-only",
                        "--checkpoint", str(checkpoint), "--extra-regressor", str(regressor))
    assert result.returncode == 0, result.stderr
    assert f"fetched {checkpoint} and {regressor}; SMPL " in result.stdout
    assert "SMPL_NEUTRAL.npz" in result.stdout


def test_without_smpl_it_fails_saying_where_to_get_it(run_script: RunScript, tmp_path) -> None:
    result = run_script("fetch_weights", "--weights-dir", str(tmp_path), "--fetch-only")
    assert result.returncode == 1
    assert "register at https://smpl.is.tue.mpg.de" in result.stderr
