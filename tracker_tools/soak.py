"""The soak run's checks against a running service: clean runs, load, bad requests, memory.

The command line is ``python -m scripts.soak`` (``scripts/soak.py``, which prints the
README's figures); the integration tests run the same functions on a CPU-sized scale.
"""

from __future__ import annotations

import base64
import json
import struct
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tracker_tools.client import ClientError, Response, ServiceClient
from tracker_tools.media import encode_base64, read_frames

#: The summary of a frame's answer that tracking decides (see :func:`summary`).
Summary = tuple[Any, ...]


def post_frame(client: ServiceClient, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """``POST /pose/hybrid`` with a JSON payload; returns (status, decoded answer)."""
    response = client.post_json("/pose/hybrid", payload)
    return response.status, response.json()


def read_video(path: Path, count: int, width: int) -> list[str]:
    """The first ``count`` frames of a video, downscaled to ``width``, as base64 JPEGs."""
    images = [encode_base64(frame) for frame in read_frames(path, count, width=width)]
    if not images:
        raise ValueError(f"{path} has no frame that OpenCV can read")
    return images


def summary(answer: dict[str, Any]) -> Summary:
    """What tracking decided for a frame: main track, its source, and every track's."""
    tracks = tuple((t["track_id"], t["pose_source"]) for t in answer.get("tracks", []))
    return (
        answer.get("frame_number"),
        answer.get("frame_width"),
        answer.get("has_3d"),
        answer.get("track_id"),
        answer.get("pose_source"),
        tracks,
    )


# --------------------------------------------------------------------------- bad requests


@dataclass(frozen=True)
class BadCase:
    """A bad request and how it must be answered.

    Attributes:
        name: What is wrong, in words.
        status: The expected 4xx status.
        words: Words the answer's ``error`` must contain.
        body: Request body (a dict is sent as JSON).
        method: HTTP method.
        path: Request path.
        headers: Request headers (``Content-Type: application/json`` unless given).

    """

    name: str
    status: int
    words: str
    body: bytes | dict[str, Any] | None = None
    method: str = "POST"
    path: str = "/pose/hybrid"
    headers: dict[str, str] = field(default_factory=dict)

    def send(self, client: ServiceClient) -> Response:
        """Send the request; returns the answer, whatever its status."""
        body = json.dumps(self.body).encode() if isinstance(self.body, dict) else self.body
        headers = {"Content-Type": "application/json", **self.headers}
        return client.request(self.method, self.path, body, headers)

    def check(self, client: ServiceClient) -> str | None:
        """Send the request; None when answered as expected, else what went wrong."""
        try:
            response = self.send(client)
            answer = response.json()
        except ClientError as failure:
            return f"{self.name}: {failure}"
        status, content_type = response.status, response.content_type
        error = answer.get("error") if isinstance(answer, dict) else None
        problems = []
        if status != self.status:
            problems.append(f"status {status}, expected {self.status}")
        if content_type != "application/json":
            problems.append(f"content type {content_type!r}")
        if not isinstance(error, str) or self.words.lower() not in error.lower():
            problems.append(f"error {error!r} lacks {self.words!r}")
        elif "Traceback" in error or 'File "' in error:
            problems.append(f"error has a traceback: {error!r}")
        return f"{self.name}: {'; '.join(problems)}" if problems else None


def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A real, complete 1-bit greyscale PNG of ``width`` x ``height`` black pixels.

    It compresses about 1000:1 (20000x20000: about 50 kB) and would decode to
    ``width * height`` pixels (1.2 GB as a BGR image).
    """
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed pixels
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data)
        + chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose start-of-frame header is rewritten to claim another size."""
    data = bytearray(cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    offset = 2
    while data[offset + 1] not in (0xC0, 0xC1, 0xC2):
        offset += 2 + struct.unpack(">H", data[offset + 2 : offset + 4])[0]
    data[offset + 5 : offset + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def bad_requests(max_body_bytes: int, max_image_pixels: int) -> list[BadCase]:
    """The corpus: every kind of bad request, with its status and the words of its error.

    Args:
        max_body_bytes: The service's ``TRACKER_MAX_BODY_BYTES`` (one case goes over it).
        max_image_pixels: The service's ``TRACKER_MAX_IMAGE_PIXELS`` (the bombs go over it).

    """
    good_jpeg = cv2.imencode(
        ".jpg", np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
    )[1].tobytes()
    good_png = cv2.imencode(".png", np.zeros((64, 64, 3), np.uint8))[1].tobytes()
    side = int(np.sqrt(max_image_pixels)) + 1  # just over the limit
    bomb = max(side, 20_000)
    image = _b64(good_jpeg)
    fake = "aGVsbG8="  # parses as a string; these cases fail before it is decoded
    return [
        BadCase("empty body", 400, "JSON", b""),
        BadCase("invalid JSON", 400, "JSON", b"not json"),
        BadCase("truncated JSON", 400, "JSON", b'{"image_base64": "/9j/4AA'),
        BadCase("JSON null", 400, "JSON", b"null"),
        BadCase("body is a JSON array", 400, "JSON object", b"[1, 2]"),
        BadCase("body is a JSON string", 400, "JSON object", b'"image"'),
        BadCase("body is a JSON number", 400, "JSON object", b"42"),
        BadCase(
            "plain-text content type", 415, "Content-Type", json.dumps({"image_base64": image})
            .encode(), headers={"Content-Type": "text/plain"},
        ),
        BadCase(
            "form content type", 415, "Content-Type", b"image_base64=abc",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        BadCase(
            "multipart without the file field", 400, "'frame'", b"--x\r\n\r\n--x--\r\n",
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        ),
        BadCase("image_base64 missing", 400, "image_base64 is missing", {"frame_number": 3}),
        BadCase("image_base64 empty", 400, "image_base64 is missing", {"image_base64": ""}),
        BadCase("image_base64 null", 400, "image_base64 is missing", {"image_base64": None}),
        BadCase("image_base64 a number", 400, "must be a string", {"image_base64": 5}),
        BadCase("image_base64 a list", 400, "must be a string", {"image_base64": [image]}),
        BadCase("image_base64 an object", 400, "must be a string", {"image_base64": {"a": 1}}),
        BadCase("invalid base64", 400, "base64", {"image_base64": "not base64!"}),
        BadCase("base64 of text", 400, "not a JPEG or PNG", {"image_base64": _b64(b"hello")}),
        BadCase(
            "base64 of a GIF", 400, "not a JPEG or PNG",
            {"image_base64": _b64(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")},
        ),
        BadCase(
            "data: URL of text", 400, "not a JPEG or PNG",
            {"image_base64": "data:image/jpeg;base64," + _b64(b"not an image at all")},
        ),
        BadCase(
            "JPEG markers without a frame header", 400, "not a JPEG or PNG",
            {"image_base64": _b64(good_jpeg[:20])},
        ),
        BadCase("truncated JPEG", 400, "does not decode", {"image_base64": _b64(good_jpeg[:700])}),
        BadCase("truncated PNG", 400, "does not decode", {"image_base64": _b64(good_png[:40])}),
        BadCase(
            f"PNG bomb {bomb}x{bomb} (compresses small)", 413, f"{bomb}x{bomb}",
            {"image_base64": _b64(png_bomb(bomb, bomb))},
        ),
        BadCase(
            "JPEG header claiming 60000x60000", 413, "60000x60000",
            {"image_base64": _b64(jpeg_claiming(60_000, 60_000))},
        ),
        BadCase(
            "body over the size limit", 413, "Too Large",
            {"image_base64": "A" * (max_body_bytes + 16)},
        ),
        BadCase("negative frame_number", 400, "frame_number", {"image_base64": fake,
                                                                "frame_number": -1}),
        BadCase("frame_number over 2^31-1", 400, "frame_number", {"image_base64": fake,
                                                                   "frame_number": 2**31}),
        BadCase("huge frame_number", 400, "frame_number", {"image_base64": fake,
                                                           "frame_number": 10**40}),
        BadCase("fractional frame_number", 400, "frame_number", {"image_base64": fake,
                                                                 "frame_number": 1.5}),
        BadCase("frame_number a word", 400, "frame_number", {"image_base64": fake,
                                                             "frame_number": "three"}),
        BadCase("frame_number a superscript digit", 400, "frame_number",
                {"image_base64": fake, "frame_number": "\u00b2"}),
        BadCase("frame_number 5000 digits in a string", 400, "frame_number",
                {"image_base64": fake, "frame_number": "9" * 5000}),
        BadCase(
            "frame_number a 5000-digit JSON number", 400, "JSON",
            b'{"image_base64": "aGVsbG8=", "frame_number": ' + b"9" * 5000 + b"}",
        ),
        BadCase("frame_number a boolean", 400, "frame_number", {"image_base64": fake,
                                                                "frame_number": True}),
        BadCase(
            "frame_number NaN", 400, "frame_number",
            b'{"image_base64": "aGVsbG8=", "frame_number": NaN}',
        ),
        BadCase("visualize a word", 400, "visualize", {"image_base64": fake, "visualize": "yes"}),
        BadCase("visualize a list", 400, "visualize", {"image_base64": fake, "visualize": [1]}),
        BadCase("session_id a number", 400, "session_id", {"image_base64": fake,
                                                           "session_id": 42}),
        BadCase(
            "session_id over 128 characters", 400, "session_id",
            {"image_base64": fake, "session_id": "s" * 129},
        ),
        BadCase(
            "session_id with a path", 400, "session_id",
            {"image_base64": fake, "session_id": "../../etc/passwd"},
        ),
        BadCase(
            "session_id and X-Session-Id differ", 400, "differ",
            {"image_base64": fake, "session_id": "a"}, headers={"X-Session-Id": "b"},
        ),
        BadCase(
            "a server-side path instead of an image", 400, "base64",
            {"image_base64": "/etc/passwd"},
        ),
        BadCase(
            "a file URL instead of an image", 400, "base64",
            {"image_base64": "file:///etc/passwd"},
        ),
        BadCase(
            "an image path field", 400, "image_base64 is missing",
            {"image_path": "/etc/passwd", "frame_number": 0},
        ),
        BadCase("GET /pose/hybrid", 405, "Method Not Allowed", method="GET"),
        BadCase("DELETE /pose/hybrid", 405, "Method Not Allowed", method="DELETE"),
        BadCase("POST /health", 405, "Method Not Allowed", b"{}", path="/health"),
        BadCase("unknown path", 404, "Not Found", method="GET", path="/pose"),
        BadCase("static file path", 404, "Not Found", method="GET", path="/static/app.py"),
        BadCase(
            "path traversal", 404, "Not Found", method="GET", path="/static/../../etc/passwd"
        ),
        BadCase(
            "a viewer path out of its folder", 404, "Not Found", method="GET",
            path="/static/%2e%2e/api/ui.py",
        ),
        BadCase("a jobs limit that is no number", 400, "limit must be an integer", method="GET",
                path="/jobs?limit=ten"),  # fmt: skip
    ]


def fire_corpus(client: ServiceClient, cases: Sequence[BadCase]) -> list[str]:
    """Send every bad request once; returns what went wrong (empty when all is well)."""
    return [problem for case in cases if (problem := case.check(client)) is not None]


# --------------------------------------------------------------------------- sessions


def run_session(
    client: ServiceClient,
    session_id: str,
    images: Sequence[str],
    *,
    pause: Callable[[], None] | None = None,
) -> list[tuple[int, dict[str, Any]]]:
    """Post a video's frames in order in one session; returns (status, answer) per frame."""
    answers = []
    for number, image in enumerate(images):
        payload = {"image_base64": image, "frame_number": number, "session_id": session_id}
        answers.append(post_frame(client, payload))
        if pause is not None:
            pause()
    return answers


def session_problems(
    session_id: str, answers: Sequence[tuple[int, dict[str, Any]]], reference: Sequence[Summary]
) -> list[str]:
    """What differs between a session's answers and its video's clean run."""
    problems = []
    for number, (status, answer) in enumerate(answers):
        if status != 200 or answer.get("error") is not None:
            problems.append(f"{session_id} frame {number}: {status} {answer.get('error')}")
        elif answer.get("session_id") != session_id:
            problems.append(f"{session_id} frame {number}: answered as {answer.get('session_id')}")
        elif summary(answer) != reference[number]:
            problems.append(
                f"{session_id} frame {number}: {summary(answer)} != clean {reference[number]}"
            )
    return problems


@dataclass
class LoadResult:
    """The outcome of concurrent sessions.

    Attributes:
        sessions: Sessions run at once.
        frames: Frames posted.
        answered: Frames answered 200 without an error.
        problems: What went wrong.
        seconds: Wall time.

    """

    sessions: int
    frames: int
    answered: int
    problems: list[str]
    seconds: float


def run_load(
    client: ServiceClient, videos: Sequence[Sequence[str]], references: Sequence[Sequence[Summary]],
    sessions: int, prefix: str = "load",
) -> LoadResult:
    """Run ``sessions`` sessions at once, videos in turn; compare each with its clean run."""
    started = time.monotonic()
    with ThreadPoolExecutor(sessions) as pool:
        futures = [
            pool.submit(run_session, client, f"{prefix}-{i}", videos[i % len(videos)])
            for i in range(sessions)
        ]
        results = [future.result() for future in futures]
    problems = []
    for i, answers in enumerate(results):
        problems += session_problems(f"{prefix}-{i}", answers, references[i % len(videos)])
    frames = sum(len(answers) for answers in results)
    answered = sum(
        1 for answers in results for status, a in answers if status == 200 and a["error"] is None
    )
    return LoadResult(sessions, frames, answered, problems, time.monotonic() - started)


@dataclass
class CorpusResult:
    """The corpus fired while a good session runs.

    Attributes:
        kinds: Kinds of bad request.
        sent: Bad requests sent.
        problems: Bad requests answered wrongly, and differences in the good session.
        good_frames: Frames the good session posted.

    """

    kinds: int
    sent: int
    problems: list[str]
    good_frames: int


def corpus_during_session(
    client: ServiceClient,
    cases: Sequence[BadCase],
    images: Sequence[str],
    reference: Sequence[Summary],
    session_id: str = "good",
) -> CorpusResult:
    """Fire the corpus over and over while a good session posts its video in order."""
    done = threading.Event()
    problems: list[str] = []
    sent = 0

    def fire() -> None:
        nonlocal sent
        while not done.is_set() or sent < len(cases):  # at least one full pass
            case = cases[sent % len(cases)]
            if (problem := case.check(client)) is not None:
                problems.append(problem)
            sent += 1

    firing = threading.Thread(target=fire, name="corpus")
    firing.start()
    try:
        answers = run_session(client, session_id, images)
    finally:
        done.set()
        firing.join()
    problems += session_problems(session_id, answers, reference)
    return CorpusResult(len(cases), sent, problems, len(answers))


@dataclass
class MemoryResult:
    """Resident memory and sessions around many short sessions.

    Attributes:
        sessions: Short sessions run.
        answered: Their frames answered 200.
        rss_mb: Resident memory of the service (MB) before, then after each tenth of them.
        sessions_alive: Sessions the service holds at the end.

    """

    sessions: int
    answered: int
    rss_mb: list[float]
    sessions_alive: int

    @property
    def growth_after_first_tenth_mb(self) -> float:
        """The most the memory rose above its level after the first tenth of the sessions."""
        return max(self.rss_mb[1:]) - self.rss_mb[1]


def short_sessions(client: ServiceClient, count: int, image: str, threads: int = 4) -> MemoryResult:
    """Run ``count`` sessions of one frame each; read the service's memory every tenth."""
    rss = [client.metric("process_resident_memory_bytes") / 2**20]
    answered = 0
    bounds = np.linspace(0, count, 11).round().astype(int)

    def one(i: int) -> bool:
        status, _ = post_frame(client, {"image_base64": image, "frame_number": 0,
                                     "session_id": f"short-{i}"})
        return status == 200

    with ThreadPoolExecutor(threads) as pool:
        for first, last in zip(bounds[:-1], bounds[1:], strict=True):
            answered += sum(pool.map(one, range(first, last)))
            rss.append(client.metric("process_resident_memory_bytes") / 2**20)
    return MemoryResult(count, answered, rss, int(client.metric("tracker_sessions")))


def requests_served(client: ServiceClient) -> dict[str, int]:
    """Requests the service has answered, by status code (from ``GET /metrics``)."""
    served: dict[str, int] = {}
    for (name, labels), value in client.metrics().items():
        status = dict(labels).get("status")
        if name == "tracker_requests" and status is not None:
            served[status] = served.get(status, 0) + int(value)
    return dict(sorted(served.items()))
