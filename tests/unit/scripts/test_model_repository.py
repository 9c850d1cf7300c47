"""The model repository's and its CPU configs' command lines, on a temporary root."""

from pathlib import Path

from tests.unit.scripts.conftest import RunScript
from tracker_service.model_spec import MODELS
from tracker_tools.model_repository import CONFIG_FILENAME, write_production_repository


def test_production_writes_every_config(run_script: RunScript, tmp_path: Path) -> None:
    result = run_script("model_repository", "production", "--root", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert sorted(p.parent.name for p in tmp_path.glob(f"*/{CONFIG_FILENAME}")) == sorted(MODELS)
    assert f"wrote {len(MODELS)} configs" in result.stdout


def test_cpu_configs_are_written_for_every_model_only(run_script: RunScript, tmp_path: Path):
    write_production_repository(tmp_path)
    (tmp_path / "not_a_model").mkdir()
    result = run_script("cpu_configs", "--root", str(tmp_path))
    assert result.returncode == 0, result.stderr
    written = sorted(p.parent.parent.name for p in tmp_path.glob("*/configs/cpu.pbtxt"))
    assert written == sorted(MODELS) and f"wrote {len(MODELS)} CPU configs" in result.stdout
