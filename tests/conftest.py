"""Fixtures shared by every test: where the repository and the shared data live."""

import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tracker_service.settings import Settings

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


def unreachable_triton_settings(folder: Path, **overrides: Any) -> Settings:
    """The service's settings with Triton unreachable (a loopback port nobody listens on).

    The body model's faces file (zeros, its real shape) is written into ``folder``;
    ``overrides`` set any other setting.
    """
    faces = folder / "faces.npy"
    np.save(faces, np.zeros((13776, 3), np.int32))
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
    return Settings.of(triton_url=f"127.0.0.1:{port}", smpl_faces=str(faces), **overrides)
