"""A 900-frame video through the whole-video endpoints, read by a real Node process.

runner.mp4 (180 frames) looped 5 times at 640x360 is uploaded, polled and parsed as the
backend's proxy and apps read it (``node/backend_reader.mjs``); the status and synchronous
answers must fit the answer budget, and the complete result must hold every frame's mesh.
Node is Debian's ``nodejs`` (``make test`` installs it when missing).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import JobService
from tests.integration.test_service import LiveService
from tests.integration.test_video_jobs import runner_frames
from tracker_tools.media import write_video

pytestmark = pytest.mark.integration

READER = Path(__file__).parent / "node" / "backend_reader.mjs"
LOOPS, RUNNER_FRAMES = 5, 180
BUDGET = 16 * 2**20


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        message = "node is absent: `make test` installs Debian's nodejs (apt-get install nodejs)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def service(job_service: JobService) -> Iterator[LiveService]:
    limits = {"job_max_frames": LOOPS * RUNNER_FRAMES, "answer_budget_bytes": BUDGET}
    with job_service("node_jobs", **limits) as live:
        yield live


def test_a_900_frame_video_reaches_node_within_the_budget_with_every_mesh_downloadable(
    node: str, service: LiveService, tmp_path: Path
) -> None:
    frames = runner_frames(RUNNER_FRAMES)
    long_video = write_video(tmp_path / "runner_x5.mp4", frames * LOOPS)
    short_video = write_video(tmp_path / "runner_30.mp4", frames[:30])
    run = subprocess.run(
        [node, str(READER), service.url, str(long_video), str(short_video), str(BUDGET)],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert run.stdout, run.stderr
    report = json.loads(run.stdout.splitlines()[-1])
    print(json.dumps(report["figures"], indent=1))  # noqa: T201 - the figures, with -s
    assert run.returncode == 0 and not report["failures"], report["failures"][:20]
    status = report["figures"]["status"]
    assert status["frames"] == LOOPS * RUNNER_FRAMES and status["bytes"] <= BUDGET
    assert status["encoding"] == "gzip" and status["wire_bytes"] < status["bytes"]
    assert report["figures"]["result"]["meshes"] == LOOPS * RUNNER_FRAMES
