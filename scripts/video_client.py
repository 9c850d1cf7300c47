"""A whole-video client as the backend is one: write a clip, upload it, poll its job.

Used by the demo, the video benchmark and the integration tests.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import orjson

#: How long a request may take (a synchronous job, a large result).
TIMEOUT_S = 900.0


def write_video(path: Path, frames: Sequence[np.ndarray], fps: float = 30.0) -> Path:
    """Write frames as an MP4 (OpenCV's ``mp4v``), as a phone's upload stands in."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def request(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None
) -> tuple[int, bytes, str]:
    """One HTTP request: (status, body, content type); HTTP errors are answers too."""
    message = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(message, timeout=TIMEOUT_S) as response:
            return response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers["Content-Type"]


def upload(
    url: str, path: str, video: bytes, max_frames: str | None = None, filename: str = "video.mp4"
) -> tuple[int, Any]:
    """POST a video as ``multipart/form-data`` (field ``video``, form field ``max_frames``).

    Returns:
        The status and the decoded JSON answer.

    """
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="video"; filename="{filename}"\r\n'
        "Content-Type: video/mp4\r\n\r\n".encode()
        + video
        + b"\r\n"
    ]
    if max_frames is not None:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="max_frames"\r\n\r\n'
            f"{max_frames}\r\n".encode()
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    status, data, _ = request(
        url + path, "POST", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    return status, orjson.loads(data)


def post_json(url: str, path: str, payload: Any) -> tuple[int, Any]:
    """POST JSON; return the status and the decoded answer."""
    status, data, _ = request(
        url + path, "POST", json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    return status, orjson.loads(data)


def get_json(url: str, path: str) -> tuple[int, Any]:
    """GET; return the status and the decoded JSON answer."""
    status, data, _ = request(url + path)
    return status, orjson.loads(data)


def poll(
    url: str,
    job_id: str,
    *,
    path: str = "/job_status/",
    query: str = "",
    every_s: float = 0.5,
    timeout_s: float = TIMEOUT_S,
    on_status: Callable[[dict[str, Any]], None] = lambda status: None,
) -> dict[str, Any]:
    """Poll a job until it is ``complete`` or ``error``; return the last status body.

    ``query`` is added to each status request (``"?frames=0"``: the result's summary only).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        status, body = get_json(url, path + job_id + query)
        if status != 200:
            raise RuntimeError(f"{path}{job_id} answered {status}: {body}")
        on_status(body)
        if body["status"] in ("complete", "error"):
            return body
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {body['status']} after {timeout_s:.0f} s")
        time.sleep(every_s)
