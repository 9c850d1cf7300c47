"""The local stack's failures are exceptions, its paths the repository's, its children stopped."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tracker_tools.stack import BUILD, MODEL_REPOSITORY, StackError, local_stack, stop_process


def test_paths_are_under_the_repository_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert BUILD == REPO_ROOT / "build" and MODEL_REPOSITORY == REPO_ROOT / "model_repository"


def test_missing_models_raise_a_stack_error_not_system_exit(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="models not built: hmr2, person_detector, smpl"):
        with local_stack(repository=tmp_path):
            pytest.fail("the stack started without models")


def test_a_child_that_ignores_sigterm_is_killed() -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print(1, flush=True); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline() == b"1\n"  # SIGTERM ignored now
    started = time.monotonic()
    stop_process(child, timeout_s=0.5)
    assert child.returncode == -9 and time.monotonic() - started < 10
    with pytest.raises(ProcessLookupError):
        os.kill(child.pid, 0)
    child.stdout.close()


def test_a_child_that_stops_on_sigterm_is_not_killed() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    stop_process(child, timeout_s=30)
    assert child.returncode == -15
