"""Reliability of the real service against a real Triton: outages, load, memory, SIGTERM.

The load and memory tests run ``python -m tracker_service`` as a subprocess, so that the
resident memory read from its ``/metrics`` is the service's alone; they use the soak
command's functions (``tracker_tools/soak.py``; ``scripts/soak.py`` prints the README's figures).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT
from tests.integration.conftest import ServerFactory
from tests.integration.test_service import LiveService, encode, read_frames, service_settings
from tracker_service.model_spec import SMPL, SMPL_FACES_FILE
from tracker_tools.client import ClientError, ServiceClient
from tracker_tools.model_repository import build_local_repository
from tracker_tools.soak import (
    post_frame,
    run_load,
    run_session,
    short_sessions,
    summary,
)
from tracker_tools.triton_server import LocalTritonServer

pytestmark = pytest.mark.integration
log = logging.getLogger(__name__)

#: The load and memory tests are cut to fit a CPU test run; ``python -m scripts.soak``
#: runs the full figures (8 sessions x 140 frames, 1000 short sessions; see the README).
LOAD_FRAMES = 40
LOAD_SESSIONS = 8
SHORT_SESSIONS = 400
#: Sessions the service keeps: the short sessions go 25 times over it.
MAX_SESSIONS = 16
FRAME_WIDTH = 320


@pytest.fixture(scope="module")
def runner() -> list[str]:
    return [encode(frame) for frame in read_frames("runner.mp4", LOAD_FRAMES, FRAME_WIDTH)]


@pytest.fixture(scope="module")
def vtest() -> list[str]:
    return [encode(frame) for frame in read_frames("vtest.avi", LOAD_FRAMES, FRAME_WIDTH)]


# --------------------------------------------------------------------------- Triton outages


def _health(live: LiveService) -> dict[str, Any]:
    status, body, _ = live.request("GET", "/health")
    assert status == 200
    return json.loads(body)


def _wait_health(live: LiveService, ready: bool, timeout_s: float = 60.0) -> float:
    started = time.monotonic()
    while _health(live)["ready"] is not ready:
        assert time.monotonic() - started < timeout_s, f"/health never became ready={ready}"
        time.sleep(0.1)
    return time.monotonic() - started


def test_triton_late_start_and_restart_mid_video_need_no_service_restart(
    local_server_factory: ServerFactory,
    production_repository: Path,
    tmp_path: Path,
    runner: list[str],
) -> None:
    models = build_local_repository(production_repository, tmp_path / "repo", intra_op_threads=1)
    triton = local_server_factory(tmp_path / "repo", models, tmp_path / "triton.log")
    live = LiveService(
        service_settings(triton, production_repository, health_cache_s=0.2, reorder_wait_s=60.0)
    )

    def post(number: int) -> tuple[int, dict[str, Any]]:
        return live.post(
            {"image_base64": runner[number], "frame_number": number, "session_id": "outage"}
        )

    try:
        # Triton not up yet: warming up, with the reason; frames are refused in words.
        health = _health(live)
        assert health["status"] == "warming_up" and health["ready"] is False
        assert "unreachable" in health["error"]
        status, answer = post(0)
        assert status == 503 and "not ready" in answer["error"]

        triton.start()
        triton.wait_ready()
        _wait_health(live, ready=True)  # by itself: the service was not restarted
        before = [post(n) for n in range(0, 12)]
        assert all(status == 200 for status, _ in before), before[0]
        track = before[-1][1]["track_id"]
        assert track is not None and before[-1][1]["pose_source"] == "detected"

        triton.stop(timeout_s=0)  # Triton is killed (SIGKILL) in the middle of the video
        during = [post(n) for n in range(12, 17)]
        assert [status for status, _ in during] == [503] * 5, during
        assert all("Triton" in a["error"] or "not ready" in a["error"] for _, a in during)
        _wait_health(live, ready=False, timeout_s=5.0)  # once its cached check expires
        assert _health(live)["status"] == "warming_up"

        triton.start()  # the same ports
        triton.wait_ready()
        _wait_health(live, ready=True)
        started = time.monotonic()
        after = [post(n) for n in range(17, 30)]
        assert all(status == 200 for status, _ in after), after[0]
        # The refused frames were released: no frame waited for them (reorder wait: 60 s).
        assert time.monotonic() - started < 30.0
        assert all(a["tracked"] for _, a in after)
        assert {a["track_id"] for _, a in after} == {track}  # the session's track survived
    finally:
        live.stop()
        triton.stop()


def test_triton_timeout_is_a_setting_and_answers_504_in_words(
    triton_server: LocalTritonServer, production_repository: Path, runner: list[str]
) -> None:
    live = LiveService(
        service_settings(triton_server, production_repository, triton_timeout_s=0.001)
    )
    try:
        status, answer = live.post({"image_base64": runner[0], "session_id": "slow"})
        assert status == 504 and "within 0.001 s" in answer["error"], answer
        status, answer = live.post({"image_base64": runner[1], "frame_number": 1,
                                    "session_id": "slow"})
        assert status == 504  # the service goes on answering, in words
    finally:
        live.stop()


# --------------------------------------------------------------------------- a real process


class ServiceProcess:
    """``python -m tracker_service`` on a free port, against a Triton server."""

    def __init__(self, triton: LocalTritonServer, repository: Path, **env: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = ServiceClient(self.url)
        environ = {
            **os.environ,
            "TRACKER_HOST": "127.0.0.1",
            "TRACKER_PORT": str(self.port),
            "TRACKER_TRITON_URL": triton.grpc_url,
            "TRACKER_SMPL_FACES": str(repository / SMPL.name / "1" / SMPL_FACES_FILE),
            "TRACKER_LOG_LEVEL": "WARNING",
            **env,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tracker_service"], cwd=REPO_ROOT, env=environ,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            self.client.wait_ready(60.0)
        except ClientError:
            self.process.kill()
            raise

    def stop(self) -> tuple[int, str]:
        """SIGTERM; returns the exit code and the output."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            output, _ = self.process.communicate(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        return self.process.returncode, output


@pytest.fixture(scope="module")
def service_process(
    triton_server: LocalTritonServer, production_repository: Path
) -> Iterator[ServiceProcess]:
    service = ServiceProcess(
        triton_server, production_repository,
        TRACKER_MAX_SESSIONS=str(MAX_SESSIONS), TRACKER_THREADS="16",
    )
    yield service
    code, output = service.stop()
    assert code == 0, output


def test_concurrent_sessions_answer_every_frame_and_keep_their_identities(
    service_process: ServiceProcess, runner: list[str], vtest: list[str]
) -> None:
    videos = [runner, vtest]
    references = [
        [summary(a) for _, a in run_session(service_process.client, f"clean-{i}", images)]
        for i, images in enumerate(videos)
    ]
    assert all(s[2] for s in references[0])  # the runner has a body in every frame
    assert len({t for s in references[1] for t, _ in s[5]}) >= 2  # vtest: several people

    result = run_load(service_process.client, videos, references, LOAD_SESSIONS)

    log.info("load: %d sessions x %d frames: %d/%d answered in %.1f s", result.sessions,
             LOAD_FRAMES, result.answered, result.frames, result.seconds)
    assert result.frames == LOAD_SESSIONS * LOAD_FRAMES
    assert result.answered == result.frames  # frames lost: 0
    assert result.problems == []  # each session tracked exactly like its clean run


def test_a_thousand_short_sessions_keep_memory_bounded(
    service_process: ServiceProcess, runner: list[str]
) -> None:
    result = short_sessions(service_process.client, SHORT_SESSIONS, runner[0])

    log.info("short sessions: %d/%d answered, %d held; RSS (MB) every tenth: %s",
             result.answered, result.sessions, result.sessions_alive,
             " ".join(f"{mb:.0f}" for mb in result.rss_mb))
    assert result.answered == SHORT_SESSIONS
    assert result.sessions_alive <= MAX_SESSIONS  # evicted beyond the limit
    # Once the first tenth of the sessions has filled the session slots and the allocator's
    # pools, the other nine tenths add no memory to speak of.
    assert result.growth_after_first_tenth_mb < 40.0, result.rss_mb


def test_sigterm_lets_requests_in_flight_finish(
    triton_server: LocalTritonServer, production_repository: Path, runner: list[str]
) -> None:
    service = ServiceProcess(triton_server, production_repository, TRACKER_THREADS="8",
                             TRACKER_LOG_LEVEL="INFO")
    answers: list[tuple[int, dict[str, Any]]] = []

    def post(number: int) -> None:
        answers.append(post_frame(service.client, {
            "image_base64": runner[number], "frame_number": 0, "session_id": f"term-{number}",
        }))

    clients = [threading.Thread(target=post, args=(n,)) for n in range(6)]
    for client in clients:
        client.start()
    time.sleep(0.3)  # the six requests are in flight: six frames take longer than that
    code, output = service.stop()
    for client in clients:
        client.join(30)
    assert code == 0, output
    assert "SIGTERM" in output and "Stopped" in output
    assert "Traceback" not in output and "still in flight" not in output
    assert [status for status, _ in answers] == [200] * 6, answers
    assert all(a["has_3d"] for _, a in answers)
    with pytest.raises(ClientError, match="no answer"):
        post_frame(service.client, {"image_base64": runner[0]})
