"""The viewer in a real browser: Debian's headless Chromium, driven by Selenium.

The runner clip (140 frames at 640x360, five bursts of 10 frames with the runner painted
out) is uploaded through the page to the real service on the real Triton server; the page
must show the upload and the job moving, play the H.264 overlay, draw the main subject's
mesh, mark the hidden frames on its timeline, and follow ``/pose/hybrid`` live, all with
no error in the browser's console. Screenshots are saved in ``<basetemp>/screenshots*/``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By

from tests.integration.conftest import JobService
from tests.integration.test_service import LiveService, encode
from tests.integration.test_video_jobs import (
    FRAMES,
    PAINTED_FRAMES,
    SIZE,
    paint_out,
    runner_frames,
)
from tracker_service import resources
from tracker_tools.media import write_video

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
#: Debian's chromium-driver; Selenium is given its path, so it never downloads a driver.
CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: How long the job and the page may take (a loaded 2-core machine).
TIMEOUT_S = 300.0


def wait_for(condition: Callable[[], Any], timeout_s: float = TIMEOUT_S, what: str = "") -> Any:
    """Poll ``condition`` every 0.1 s until it is truthy; its value."""
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """Headless Chromium; skipped, with the reason, where it is not installed (failed in CI)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        reason = f"{CHROMIUM} or {CHROMEDRIVER} is missing: `make test` installs Debian's chromium"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}", "--window-size=1440,1100",
        # WebGL on the CPU (SwiftShader): no GPU here.
        "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
    ):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=DriverService(str(CHROMEDRIVER)), options=options)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def service(job_service: JobService) -> Iterator[LiveService]:
    with job_service("viewer", job_max_frames=150) as live:
        yield live


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@dataclass
class Viewed:
    job_id: str
    upload: list[float]  # the upload bar's values, as sampled
    job: list[float]  # the job bar's values, as sampled
    states: list[str]  # the job's state line, as sampled


@pytest.fixture(scope="module")
def viewed(
    browser: webdriver.Chrome, service: LiveService, tmp_path_factory, screenshots: Path
) -> Viewed:
    """The runner clip uploaded through the page, followed until the job is shown."""
    frames = runner_frames(FRAMES)
    for n in PAINTED_FRAMES:
        frames[n] = paint_out(frames[n])
    video = write_video(tmp_path_factory.mktemp("clip") / "runner_painted.mp4", frames)
    browser.get(service.url + "/")
    browser.find_element(By.ID, "video-file").send_keys(str(video))
    browser.find_element(By.ID, "upload-button").click()
    upload: list[float] = []
    job: list[float] = []
    states: list[str] = []
    deadline = time.monotonic() + TIMEOUT_S
    shot = False
    while browser.find_element(By.ID, "job-view").get_attribute("hidden") is not None:
        assert time.monotonic() < deadline, f"the job did not end: {states[-3:]}"
        sample = browser.execute_script(
            "return [document.getElementById('upload-progress').value,"
            " document.getElementById('job-progress').value,"
            " document.getElementById('job-state').textContent]"
        )
        upload.append(sample[0])
        job.append(sample[1])
        states.append(sample[2])
        assert "error" not in sample[2], sample[2]
        if not shot and 20 <= sample[1] < 90:
            browser.save_screenshot(str(screenshots / "running.png"))
            shot = True
        time.sleep(0.1)
    states.append(browser.find_element(By.ID, "job-state").text)
    job_id = browser.find_element(By.ID, "job-view").get_attribute("data-job")
    browser.save_screenshot(str(screenshots / "job.png"))
    return Viewed(job_id, upload, job, states)


def test_the_upload_and_the_job_progress_show_and_the_job_completes(
    browser: webdriver.Chrome, viewed: Viewed
) -> None:
    assert viewed.upload[-1] == 100
    assert any(0 < value < 100 for value in viewed.job), f"the job bar never moved: {viewed.job}"
    assert viewed.job == sorted(viewed.job), "the job bar went back"
    assert any("analyse" in state for state in viewed.states), viewed.states[::10]
    assert "complete" in viewed.states[-1]
    row = wait_for(  # read in one script: the list is redrawn every few seconds
        lambda: browser.execute_script(
            "const row = document.querySelector(`#jobs tr[data-job='${arguments[0]}']`);"
            "return row && row.textContent",
            viewed.job_id,
        ),
        what="the job in the list",
    )
    assert "complete" in row


def test_the_overlay_is_h264_and_plays_and_the_frame_follows_it(
    browser: webdriver.Chrome, viewed: Viewed, service: LiveService
) -> None:
    assert browser.find_element(By.ID, "overlay-codec").text == "H.264"
    with service.app.app_context():
        path = resources.jobs().overlay_path(viewed.job_id)
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    state = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const video = document.getElementById('overlay');
        const before = video.currentTime;
        video.play().then(
          () => setTimeout(() => done({ready: video.readyState, before,
            after: video.currentTime, width: video.videoWidth, height: video.videoHeight,
            error: video.error && video.error.message,
            frame: Number(document.getElementById('scrubber').value)}), 1500),
          (e) => done({error: String(e)}));
        """
    )
    assert state["error"] is None, state
    assert state["ready"] >= 2 and state["after"] > state["before"] + 0.2, state
    assert (state["width"], state["height"]) == SIZE
    # The scrubber (and with it the timeline's mark and the mesh) follows the playing video.
    assert abs(state["frame"] - state["after"] * 30) <= 4, state


def test_the_overlay_streams_index_first_and_by_ranges(
    viewed: Viewed, service: LiveService
) -> None:
    whole = service.client.request("GET", f"/output/{viewed.job_id}").body
    assert 0 < whole.find(b"moov") < whole.find(b"mdat")  # +faststart: playable as it arrives
    part = service.client.request(
        "GET", f"/output/{viewed.job_id}", headers={"Range": "bytes=1000-1999"}
    )
    assert (part.status, part.body) == (206, whole[1000:2000])


def _canvas_pixels(browser: webdriver.Chrome) -> np.ndarray:
    png = browser.find_element(By.ID, "mesh-view").screenshot_as_png
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)


def _body_fraction(image: np.ndarray) -> float:
    """The share of pixels that differ from the 3D view's background (#f2f4f7)."""
    background = np.array([0xF7, 0xF4, 0xF2])  # BGR
    return float((np.abs(image.astype(int) - background).sum(axis=2) > 30).mean())


def test_the_3d_view_draws_a_body_at_detected_and_hidden_frames(
    browser: webdriver.Chrome, viewed: Viewed, screenshots: Path
) -> None:
    browser.execute_script("document.getElementById('overlay').pause()")
    hidden = min(PAINTED_FRAMES) + 5
    for frame in (3, hidden):
        browser.execute_script(
            "const s = document.getElementById('scrubber');"
            "s.value = arguments[0]; s.dispatchEvent(new Event('input'));",
            frame,
        )
        label = browser.find_element(By.ID, "frame-label").text
        assert label.startswith(f"{frame} ("), label
        fraction = _body_fraction(_canvas_pixels(browser))
        assert 0.03 < fraction < 0.8, f"frame {frame}: {fraction:.3f} of the view is the body"
    browser.save_screenshot(str(screenshots / "hidden_frame.png"))


def test_the_timeline_marks_the_hidden_frames(browser: webdriver.Chrome, viewed: Viewed) -> None:
    sources = browser.execute_script(
        "return [...document.querySelectorAll('#timeline span')].map(s => s.dataset.source)"
    )
    assert len(sources) == FRAMES
    assert all(sources[n] in ("interpolated", "predicted") for n in PAINTED_FRAMES), [
        (n, sources[n]) for n in sorted(PAINTED_FRAMES)
    ]
    visible = [sources[n] for n in range(FRAMES) if n not in PAINTED_FRAMES]
    assert visible.count("detected") >= 0.9 * len(visible)
    identities = browser.find_element(By.ID, "identities").text
    assert "(main subject)" in identities


def test_the_live_tab_shows_the_sessions_and_the_latest_frames(
    browser: webdriver.Chrome, viewed: Viewed, service: LiveService, screenshots: Path
) -> None:
    frame = runner_frames(1)[0]
    for n in range(3):
        status, _ = service.post(
            {"image_base64": encode(frame), "frame_number": n, "session_id": "viewer-live"}
        )
        assert status == 200
    browser.find_element(By.ID, "tab-live").click()
    sessions = wait_for(
        lambda: browser.find_element(By.ID, "sessions").text.count("viewer-live"), 30,
        "the session in the live tab",
    )  # fmt: skip
    assert sessions == 1
    rows = browser.execute_script(  # in one script: the tables are redrawn every 2 s
        "return [...document.querySelectorAll('#frames tbody tr')]"
        ".map(row => [...row.cells].map(cell => cell.textContent))"
    )
    assert [row[1] for row in rows] == ["2", "1", "0"], rows  # the latest first
    assert rows[0][0] == "viewer-live" and rows[0][4] == "detected", rows
    assert "ready" in browser.find_element(By.ID, "health").text
    browser.save_screenshot(str(screenshots / "live.png"))
    browser.find_element(By.ID, "tab-jobs").click()


def test_the_console_shows_no_error(browser: webdriver.Chrome, viewed: Viewed) -> None:
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
