"""The stand-in body model's command line writes the official files, as the library makes them."""

from pathlib import Path

from tests.unit.scripts.conftest import RunScript
from tests.unit.tracker_tools.hmr2.test_body_model import assert_same_model
from tracker_tools.hmr2.smpl_file import load_smpl
from tracker_tools.hmr2.standin_smpl import make_standin


def test_the_files_are_written(run_script: RunScript, tmp_path: Path) -> None:
    result = run_script("make_standin_smpl", "--out", str(tmp_path), "--pkl")
    assert result.returncode == 0, result.stderr
    assert "SMPL_NEUTRAL.npz" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "SMPL_NEUTRAL.npz", "SMPL_NEUTRAL.pkl", "SMPL_to_J19.pkl",
    ]  # fmt: skip
    loaded = load_smpl(tmp_path / "SMPL_NEUTRAL.npz", tmp_path / "SMPL_to_J19.pkl")
    assert_same_model(loaded, make_standin())
