"""The one HTTP client of the tooling: the tracker service's API, and Triton's and nginx's probes.

The tracker service's endpoints (frames, video jobs, health, metrics) are methods of
:class:`ServiceClient`; the same client reads Triton's readiness and metrics pages
(:func:`metrics_at`) and probes the cluster's nginx. Only :mod:`tracker_tools.weights`, which
downloads the official weights from their hosts (redirects, resumed ranges), has its own.

Every call goes through :meth:`ServiceClient.request`, which has one timeout policy (the
client's ``timeout_s`` for each request, unless a call passes its own) and one error type:
:class:`ClientError` when no answer came (refused, reset, timed out) or, from
:meth:`Response.answer`, when the answer is not a 200. A 4xx or 5xx is otherwise an answer
like any other (:class:`Response` carries its status), so that checks of bad requests read
it. Each endpoint is one method on top of :meth:`ServiceClient.request`: the whole-video jobs
are :meth:`ServiceClient.upload_video` and :meth:`ServiceClient.wait_job`.

Example::

    client = ServiceClient("http://127.0.0.1:5000")
    client.wait_ready(60.0)
    answer = client.post_frame(jpeg_bytes, frame_number=0, session_id="video-1").answer()
    job = client.upload_video("/process_video_async", mp4_bytes).answer()
    final = client.wait_job(job["job_id"])
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

#: Default timeout of one request, as the legacy backend's.
DEFAULT_TIMEOUT_S = 120.0
#: How often :meth:`ServiceClient.wait_ready` asks ``/health``.
POLL_INTERVAL_S = 0.2
#: What a job's status is when it has ended.
JOB_ENDED = ("complete", "error")
#: A Prometheus sample: (name without ``_total``, sorted labels).
MetricKey = tuple[str, tuple[tuple[str, str], ...]]


class ClientError(RuntimeError):
    """The service did not answer, or answered with an error where an answer was needed.

    Attributes:
        status: The HTTP status when there was an answer, else None.

    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Response:
    """One HTTP answer (any status).

    Attributes:
        status: HTTP status code.
        body: The raw body.
        content_type: The ``Content-Type`` header ('' when absent).
        seconds: Time from sending the request to the end of the body.
        headers: The answer's headers.
        size: The body's bytes on the wire (also set when the body was not kept:
            :meth:`ServiceClient.measure`).

    """

    status: int
    body: bytes
    content_type: str
    seconds: float
    headers: Mapping[str, str] = field(default_factory=dict)
    size: int = 0

    def json(self) -> Any:
        """The body decoded as JSON.

        Raises:
            ClientError: The body is not JSON.

        """
        try:
            return json.loads(self.body)
        except ValueError as error:
            raise ClientError(
                f"{self.status} answered with a body that is not JSON: {self.body[:200]!r}",
                self.status,
            ) from error

    def answer(self) -> dict[str, Any]:
        """The JSON object of a 200 answer.

        Raises:
            ClientError: Another status (with the answer's ``error``), or not a JSON object.

        """
        decoded = self.json()
        if self.status != 200 or not isinstance(decoded, dict):
            error = decoded.get("error") if isinstance(decoded, dict) else decoded
            raise ClientError(f"the service answered {self.status}: {error}", self.status)
        return decoded


def encode_multipart(
    fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]
) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body; returns (body, content type with its boundary).

    Args:
        fields: Form fields, name to value.
        files: File fields, name to (file name, content, content type).

    """
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            .encode()
        )
    for name, (filename, content, content_type) in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'.encode()
            + content + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


class ServiceClient:
    """The tracker service at ``url``.

    Args:
        url: Base URL, e.g. ``http://127.0.0.1:5000``.
        timeout_s: Timeout of each request (connect and read).

    Raises:
        ValueError: A non-positive timeout.

    """

    def __init__(self, url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        *,
        timeout_s: float | None = None,
    ) -> Response:
        """Send one request; every status is an answer.

        Raises:
            ClientError: No answer (refused, reset, timed out).

        """
        return self._send(method, path, body, headers, timeout_s, keep=True)

    def measure(
        self, path: str, headers: dict[str, str] | None = None, *, timeout_s: float | None = None
    ) -> Response:
        """``GET`` an answer that may be large, read as a stream and not kept.

        The returned :class:`Response` has an empty ``body``; its ``size`` is the number of
        bytes on the wire (compressed when ``headers`` accept an encoding the service uses)
        and ``seconds`` the time from the request to the last byte.

        Raises:
            ClientError: No answer (refused, reset, timed out).

        """
        return self._send("GET", path, None, headers, timeout_s, keep=False)

    def _send(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, str] | None,
        timeout_s: float | None,
        *,
        keep: bool,
    ) -> Response:
        request = urllib.request.Request(
            self.url + path, data=body, method=method, headers=headers or {}
        )
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=timeout_s or self.timeout_s) as reply:
                (data, size), status, answered = _read(reply, keep), reply.status, reply.headers
        except urllib.error.HTTPError as error:
            (data, size), status, answered = _read(error, keep), error.code, error.headers
        except (OSError, urllib.error.URLError) as error:
            raise ClientError(f"{method} {self.url}{path}: no answer ({error})") from error
        seconds = time.perf_counter() - start
        content_type = answered.get("Content-Type", "")
        return Response(status, data, content_type, seconds, dict(answered), size)

    def post_json(
        self, path: str, payload: Any, headers: dict[str, str] | None = None
    ) -> Response:
        """``POST`` a JSON body (``bytes`` are sent as they are, for malformed bodies)."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.request(
            "POST", path, body, {"Content-Type": "application/json", **(headers or {})}
        )

    def post_frame(
        self,
        image: bytes | str,
        *,
        frame_number: int | None = None,
        session_id: str | None = None,
        visualize: bool | None = None,
        multipart: bool = False,
    ) -> Response:
        """``POST /pose/hybrid`` one frame, as the backend does.

        Args:
            image: The encoded JPEG or PNG, or already its base64 text (JSON only).
            frame_number: The frame's number in its video.
            session_id: The video's session.
            visualize: Ask for the drawn frame.
            multipart: Send ``multipart/form-data`` (file field ``frame``, form field
                ``frameNumber``) as the backend's mobile route does, instead of JSON.

        """
        if multipart:
            if isinstance(image, str):
                image = base64.b64decode(image)
            fields = {"frameNumber": str(frame_number)} if frame_number is not None else {}
            if session_id is not None:
                fields["session_id"] = session_id
            kind = "image/png" if image.startswith(b"\x89PNG") else "image/jpeg"
            body, content_type = encode_multipart(fields, {"frame": ("frame", image, kind)})
            return self.request("POST", "/pose/hybrid", body, {"Content-Type": content_type})
        payload: dict[str, Any] = {
            "image_base64": image if isinstance(image, str) else base64.b64encode(image).decode()
        }
        optional = {"frame_number": frame_number, "session_id": session_id, "visualize": visualize}
        payload.update({k: v for k, v in optional.items() if v is not None})
        return self.post_json("/pose/hybrid", payload)

    def upload_video(
        self,
        path: str,
        video: bytes,
        *,
        max_frames: int | str | None = None,
        filename: str = "video.mp4",
    ) -> Response:
        """``POST`` a video as ``multipart/form-data``, as the backend uploads one.

        Args:
            path: The endpoint: ``/process_video_async`` (a job) or ``/process_video``
                (answered when done).
            video: The encoded video (MP4).
            max_frames: The form field ``max_frames`` (sent as it is, for malformed values).
            filename: The file name of the field ``video``.

        """
        fields = {"max_frames": str(max_frames)} if max_frames is not None else {}
        body, content_type = encode_multipart(fields, {"video": (filename, video, "video/mp4")})
        return self.request("POST", path, body, {"Content-Type": content_type})

    def wait_job(
        self,
        job_id: str,
        *,
        path: str = "/job_status/",
        query: str = "",
        every_s: float = 0.5,
        timeout_s: float | None = None,
        on_status: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll a job's status until it is ``complete`` or ``error``; return that status.

        Args:
            job_id: The job, as its submission answered.
            path: The status endpoint (``/pose/video/status/`` for the path flavour's jobs).
            query: Added to each status request (``"?frames=0"``: the result's summary only).
            every_s: Seconds between two polls.
            timeout_s: How long to wait in all; None: the client's ``timeout_s``.
            on_status: Called with every status polled, the last one included.

        Raises:
            ClientError: A status request was not answered, or not with a 200.
            TimeoutError: The job had not ended after ``timeout_s``.

        """
        limit_s = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + limit_s
        while True:
            status = self.request("GET", path + job_id + query).answer()
            if on_status is not None:
                on_status(status)
            if status.get("status") in JOB_ENDED:
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"job {job_id} still {status.get('status')} after {limit_s:.0f} s"
                )
            time.sleep(every_s)

    def health(self) -> dict[str, Any]:
        """``GET /health`` (200 when ready, 503 while warming up: both are answers)."""
        health = self.request("GET", "/health").json()
        if not isinstance(health, dict):
            raise ClientError(f"/health answered {health!r}, not a JSON object")
        return health

    def is_ready(self) -> bool:
        """``/health`` answers ready; False while nothing answers, or not in JSON."""
        try:
            return self.health().get("ready") is True
        except ClientError:
            return False

    def wait_ready(
        self, timeout_s: float, *, process: subprocess.Popen[bytes] | None = None
    ) -> None:
        """Poll ``GET /health`` until it answers ready.

        Args:
            timeout_s: How long to wait in all.
            process: The service's process, if this side started it: its exit ends the wait.

        Raises:
            ClientError: Not ready in time (with the last reason), or ``process`` exited.

        """
        deadline = time.monotonic() + timeout_s
        reason = "no answer yet"
        while True:
            if process is not None and process.poll() is not None:
                raise ClientError(f"the tracker service exited with code {process.returncode}")
            remaining = deadline - time.monotonic()
            try:
                health = self.request(
                    "GET", "/health", timeout_s=max(min(5.0, remaining), 0.1)
                ).json()
                if isinstance(health, dict) and health.get("ready"):
                    return
                reason = str(health.get("error") or health.get("status")) if isinstance(
                    health, dict) else repr(health)
            except ClientError as error:
                reason = str(error)
            if remaining <= 0:
                raise ClientError(f"{self.url} is not ready after {timeout_s:.0f} s: {reason}")
            time.sleep(POLL_INTERVAL_S)

    def metrics(self, path: str = "/metrics") -> dict[MetricKey, float]:
        """The Prometheus page at ``path`` as ``{(sample name, sorted labels): value}``."""
        return scrape(self.request("GET", path).body.decode())

    def metric(self, name: str) -> float:
        """The value of an unlabelled metric from ``GET /metrics``.

        Raises:
            KeyError: The service does not export it.

        """
        return self.metrics()[(name.removesuffix("_total"), ())]


def _read(reply: Any, keep: bool) -> tuple[bytes, int]:
    """An answer's body and its length; read in 1 MiB chunks and dropped unless ``keep``."""
    if keep:
        body = reply.read()
        return body, len(body)
    size = 0
    while chunk := reply.read(2**20):
        size += len(chunk)
    return b"", size


def scrape(text: str) -> dict[MetricKey, float]:
    """Parse a Prometheus text page as ``{(sample name without _total, labels): value}``."""
    return {
        (sample.name.removesuffix("_total"), tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def triton_batches(
    before: dict[MetricKey, float], after: dict[MetricKey, float]
) -> dict[str, float]:
    """Triton's average batch size per model between two scrapes of its metrics page.

    Inferences over executions (``nv_inference_count`` / ``nv_inference_exec_count`` deltas);
    a model that did not run is left out.
    """
    batches = {}
    for (name, labels), value in after.items():
        if name == "nv_inference_exec_count":
            model = dict(labels)["model"]
            executions = value - before.get((name, labels), 0.0)
            count_key = ("nv_inference_count", labels)
            inferences = after.get(count_key, 0.0) - before.get(count_key, 0.0)
            if executions:
                batches[model] = inferences / executions
    return batches


def metrics_at(url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[MetricKey, float]:
    """The Prometheus page at a full URL (e.g. Triton's metrics port), parsed by :func:`scrape`."""
    return ServiceClient(url, timeout_s=timeout_s).metrics("")
