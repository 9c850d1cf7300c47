"""Bad requests against the real service (waitress, real Triton): 4xx in words, service unharmed.

The corpus is ``tracker_tools.soak.bad_requests`` (the soak command fires the same table); each
case is a request, its expected status and words its JSON ``error`` must contain.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.integration.test_service import (
    MAX_BODY_BYTES,
    MAX_IMAGE_PIXELS,
    LiveService,
    encode,
    read_frames,
    service_settings,
)
from tracker_service import resources
from tracker_tools.soak import BadCase, bad_requests, corpus_during_session, run_session, summary
from tracker_tools.triton_server import LocalTritonServer

pytestmark = pytest.mark.integration

CORPUS = bad_requests(MAX_BODY_BYTES, MAX_IMAGE_PIXELS)


@pytest.fixture(scope="module")
def service(triton_server: LocalTritonServer, production_repository: Path) -> Iterator[LiveService]:
    live = LiveService(service_settings(triton_server, production_repository))
    yield live
    live.stop()


def test_the_corpus_has_at_least_25_kinds() -> None:
    assert len({case.name for case in CORPUS}) == len(CORPUS) >= 25
    assert {case.status for case in CORPUS} == {400, 404, 405, 413, 415}


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_bad_request_is_answered_in_words(service: LiveService, case: BadCase) -> None:
    response = case.send(service.client)
    answer = response.json()
    assert (response.status, response.content_type) == (case.status, "application/json"), answer
    assert set(answer) == {"error"} and case.words.lower() in answer["error"].lower()
    assert "Traceback" not in answer["error"] and len(answer["error"]) < 300


def test_a_one_pixel_image_is_a_frame_without_anybody(service: LiveService) -> None:
    # A valid image within the limits is answered like any frame: nobody is in it, so
    # has_3d is false (the legacy answer for "no person"), with no error.
    for ext in (".png", ".jpg"):
        status, answer = service.post(
            {"image_base64": encode(np.zeros((1, 1, 3), np.uint8), ext), "session_id": "tiny"}
        )
        assert status == 200, answer
        assert answer["has_3d"] is False and answer["error"] is None
        assert (answer["frame_width"], answer["frame_height"]) == (1, 1)


def test_forced_internal_error_is_500_in_words_without_traceback(
    service: LiveService, monkeypatch: pytest.MonkeyPatch
) -> None:
    with service.app.app_context():
        pose = resources.frames()

    def explode(*_: object) -> bytes:
        raise RuntimeError("secret internal detail /srv/app/module.py line 12")

    monkeypatch.setattr(pose._encoder, "encode", explode)
    status, answer = service.post(
        {"image_base64": encode(np.zeros((64, 64, 3), np.uint8)), "session_id": "boom"}
    )
    assert status == 500 and set(answer) == {"error"}
    assert "internal error" in answer["error"]
    assert "secret" not in answer["error"] and "Traceback" not in answer["error"]
    monkeypatch.undo()
    status, answer = service.post(
        {"image_base64": encode(np.zeros((64, 64, 3), np.uint8)), "session_id": "boom"}
    )
    assert status == 200 and answer["error"] is None  # the service goes on serving


def test_only_the_known_endpoints_are_routed(service: LiveService) -> None:
    # Files are served only from a job's own folder and the viewer's static folder, a path a
    # client names is read only inside TRACKER_VIDEO_FOLDER (off by default:
    # tests/integration/test_video_jobs.py); debug mode is off.
    assert {rule.rule for rule in service.app.url_map.iter_rules()} == {
        "/pose/hybrid", "/health", "/metrics", "/warmup", "/reload",
        "/process_video_async", "/process_video", "/job_status/<job_id>",
        "/pose/video/status/<job_id>", "/frame/<job_id>/<int:frame_index>",
        "/output/<job_id>", "/job/<job_id>", "/pose/video", "/result/<job_id>",
        "/job/<job_id>/frames",
        "/", "/jobs", "/live", "/static/<path:filename>",
    }
    assert service.app.debug is False and service.app.testing is False


def test_a_good_session_is_unaffected_by_the_corpus(service: LiveService) -> None:
    images = [encode(frame) for frame in read_frames("vtest.avi", 16, 320)]
    clean = [summary(answer) for _, answer in run_session(service.client, "clean", images)]
    assert all(s[2] for s in clean) and len({s[3] for s in clean}) == 1  # one main subject

    result = corpus_during_session(service.client, CORPUS, images, clean, session_id="good")

    assert result.problems == []
    assert result.sent >= result.kinds and result.good_frames == len(images)
    status, body, _ = service.request("GET", "/health")
    assert status == 200 and json.loads(body)["ready"] is True
