"""Fixtures shared by every test: where the repository and the shared data live."""

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ``../shared``; skips the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs the project's shared data beside the repo")
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
