"""The compose check's HTTP helpers on the one client (the check itself needs Docker)."""

import base64
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from scripts import compose_check
from tests.stand_in import stand_in, unanswered_url
from tracker_service.decode import image_size
from tracker_tools.client import ClientError, ServiceClient
from tracker_tools.media import write_video

#: What the stand-in service answers: path to (status, body).
ANSWERS = {
    "/ready/health": (200, b'{"ready": true, "status": "ready"}'),
    "/warming/health": (503, b'{"ready": false, "status": "warming up"}'),
    "/proxy/health": (502, b"<html>bad gateway</html>"),
    "/pose/hybrid": (503, b'{"error": "Triton is not ready"}'),
}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with stand_in(ANSWERS) as address:
        yield address


def test_ready_only_when_health_answers_ready(url: str) -> None:
    assert compose_check.is_ready(ServiceClient(url + "/ready", timeout_s=5))
    for prefix in ("/warming", "/proxy"):
        assert not compose_check.is_ready(ServiceClient(url + prefix, timeout_s=5))
    with unanswered_url() as nobody:
        assert not compose_check.is_ready(ServiceClient(nobody, timeout_s=1))


def test_a_refused_frame_is_an_answer_with_its_time(url: str) -> None:
    status, body, seconds = compose_check.post_frame(ServiceClient(url), "aGk=", 3, "compose")
    assert (status, body) == (503, {"error": "Triton is not ready"}) and seconds > 0


def test_frames_are_the_backends_png_and_a_short_video_is_refused_in_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = write_video(tmp_path / "clip.mp4", [np.full((96, 128, 3), 90, np.uint8)] * 3)
    monkeypatch.setattr(compose_check, "VIDEO", video)
    frames = compose_check.posted_frames(2)
    assert len(frames) == 2
    assert image_size(base64.b64decode(frames[0])) == compose_check.FRAME_SIZE
    with pytest.raises(compose_check.ComposeCheckError, match="3 frames, 5 needed"):
        compose_check.posted_frames(5)


def test_no_answer_is_a_client_error() -> None:
    with unanswered_url() as nobody, pytest.raises(ClientError, match="no answer"):
        compose_check.post_frame(ServiceClient(nobody, timeout_s=1), "aGk=", 0, "s")


def test_the_help_names_the_check(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        compose_check.main(["--help"])
    assert info.value.code == 0 and "compose stack for real" in capsys.readouterr().out
