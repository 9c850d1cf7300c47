"""Running a command-line entry point as users do: ``python -m scripts.NAME`` in a subprocess."""

import os
import subprocess
import sys
from collections.abc import Callable, Mapping

import pytest

from tests.conftest import REPO_ROOT

#: Seconds one command may run (small inputs only).
TIMEOUT_S = 300

RunScript = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_script() -> RunScript:
    """``run_script(name, *args, env=None)``: run ``python -m scripts.<name> args`` from the root.

    Returns the finished process, its output as text; ``env`` replaces the environment.
    """

    def run(
        name: str, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", f"scripts.{name}", *args], cwd=REPO_ROOT,
            env=dict(os.environ if env is None else env),
            capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
        )  # fmt: skip

    return run
