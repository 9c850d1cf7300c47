"""The compose stack for real: images built, ``docker compose up``, frames through the containers.

What ``make test-compose`` runs (``scripts/compose_test.sh``, then ``python -m
scripts.compose_check``): :func:`check` drives the test project (:class:`Stack`) through
every step the script's docstring lists and returns the figures; :func:`markdown` writes
them as the README's table.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tracker_service.model_spec import HMR2, SMPL, SMPL_FACES_FILE
from tracker_tools.backend import BACKEND_SIZE, read_backend_frames
from tracker_tools.client import Response, ServiceClient, metrics_at
from tracker_tools.machine import machine
from tracker_tools.media import SHARED_MEDIA, encode_base64
from tracker_tools.stack import BUILD, local_stack
from tracker_tools.tiny_models import build_tiny_repository
from tracker_tools.triton_server import free_ports

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILES = ("compose.yaml", "compose.pytriton.yaml", "tests/compose/compose.test.yaml")
PROJECT = "pose-tracker-test"
STATE = BUILD / "compose"
VIDEO = SHARED_MEDIA / "runner.mp4"
#: Frames posted, and after which one Triton is killed.
FRAMES = 60
KILL_AFTER = 15
#: Timeout of each ``/health`` poll while the stack comes up.
HEALTH_TIMEOUT_S = 5.0
#: The tracker's stop_grace_period in compose.yaml.
GRACE_S = 40.0
#: Environment variable names that would hold a secret.
SECRET_WORDS = ("SECRET", "PASSWORD", "TOKEN", "KEY", "CREDENTIAL")
#: What tests/compose/compose.test.yaml reads: the models, the tracker's and Triton's ports.
TEST_VARIABLES = (
    "TEST_MODEL_REPOSITORY", "TEST_TRACKER_PORT",
    "TEST_TRITON_HTTP_PORT", "TEST_TRITON_GRPC_PORT", "TEST_TRITON_METRICS_PORT",
)
TIMEOUTS_S = {"build": 480.0, "up": 240.0, "ready": 120.0, "stop": 60.0}

_log = logging.getLogger(__name__)


class ComposeCheckError(RuntimeError):
    """A step of the compose check failed (the message says which, with the logs)."""


class Stack:
    """The test project of compose files, driven through the Compose v2 binary and ``docker``."""

    def __init__(self, compose_bin: str, env: dict[str, str]) -> None:
        """Args: compose_bin: the Compose v2 binary; env: the environment it runs with."""
        files = [arg for name in COMPOSE_FILES for arg in ("-f", str(ROOT / name))]
        self._compose = [compose_bin, "-p", PROJECT, "--project-directory", str(ROOT), *files]
        self._env = env

    def compose(self, *args: str, timeout_s: float = 120.0) -> str:
        """Run a compose command; return its output, or raise with it."""
        return _run([*self._compose, *args], self._env, timeout_s)

    def python(self, service: str, code: str) -> subprocess.CompletedProcess:
        """Run Python code in the service's container (``compose exec``); never raises."""
        return subprocess.run(
            [*self._compose, "exec", "-T", service, "python", "-c", code], env=self._env,
            capture_output=True, text=True, timeout=60, check=False,
        )

    def docker(self, *args: str, timeout_s: float = 60.0) -> str:
        """Run a ``docker`` command; return its output, or raise with it."""
        return _run(["docker", *args], self._env, timeout_s)

    def inspect(self, service: str) -> dict[str, Any]:
        """``docker inspect`` of the service's container."""
        (container,) = self.compose("ps", "-aq", service).split()
        return json.loads(self.docker("inspect", container))[0]

    def logs(self, service: str, lines: int = 30) -> str:
        """The last lines of the service's log (never raises)."""
        try:
            return self.compose("logs", "--no-color", "--tail", str(lines), service)
        except ComposeCheckError as exc:
            return str(exc)

    def wait(self, what: str, done: Callable[[], bool], timeout_s: float, service: str) -> float:
        """Poll ``done`` until true; return the seconds it took, or raise with the log tail."""
        start = time.monotonic()
        while not done():
            if time.monotonic() - start > timeout_s:
                raise ComposeCheckError(
                    f"{what}: not after {timeout_s:.0f} s; last lines of {service}'s log:\n"
                    f"{self.logs(service)}"
                )
            time.sleep(0.25)
        return time.monotonic() - start


def _run(command: list[str], env: dict[str, str], timeout_s: float) -> str:
    try:
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ComposeCheckError(f"{' '.join(command[:6])}... ran past {timeout_s:.0f} s") from exc
    if result.returncode != 0:
        raise ComposeCheckError(
            f"{' '.join(command)} exited {result.returncode}:\n{result.stdout[-3000:]}"
            f"{result.stderr[-3000:]}"
        )
    return result.stdout


def posted_frames(count: int) -> list[str]:
    """The video's first frames as the backend posts them: 640x360 PNG, base64."""
    return [encode_base64(f, ".png") for f in read_backend_frames(VIDEO, count)]


def prepare_models() -> Path:
    """The tiny model set as plain files (the container cannot follow links to the host)."""
    tiny = build_tiny_repository(BUILD / "tiny_repository")
    models = STATE / "models"
    shutil.copytree(tiny, models, symlinks=False, dirs_exist_ok=True)
    return models.resolve()


def check_answer(answer: dict, number: int, faces: np.ndarray) -> int:
    """Check one answer's body and mesh; return its track id."""
    assert answer["error"] is None and answer["frame_number"] == number, answer.get("error")
    assert (answer["frame_width"], answer["frame_height"]) == BACKEND_SIZE
    assert answer["has_3d"] is True and answer["keypoint_count"] == len(answer["keypoints"]) > 0
    assert np.array(answer["mesh_vertices_data"]).shape == (answer["mesh_vertices"], 3)
    np.testing.assert_array_equal(answer["mesh_faces_data"], faces)
    assert answer["tracked"] is True and answer["tracks"], answer["tracks"]
    return answer["track_id"]


def kill_triton(stack: Stack) -> dict[str, Any]:
    """SIGKILL Triton's server process from the host, as a crash would; return its state."""
    before = stack.inspect("triton")
    os.kill(before["State"]["Pid"], signal.SIGKILL)
    return before


def run_video(
    stack: Stack, client: ServiceClient, frames: Sequence[str], faces: np.ndarray
) -> dict:
    """Post the frames in order, once each, as the backend does; kill Triton on the way.

    Triton is killed before frame ``KILL_AFTER``. Frames posted while it is down must be
    refused (503, in words), at one a second; every answered frame is checked, and the
    session's identity must survive.
    """
    session, ids, latencies, outage = "compose", [], [], []
    tracker_before = stack.inspect("tracker")
    killed = recovered_s = None
    for number, image in enumerate(frames):
        if number == KILL_AFTER:
            triton_before = kill_triton(stack)
            killed = time.monotonic()
        response = client.post_frame(image, frame_number=number, session_id=session)
        status, body = response.status, response.json()
        if status != 200:
            assert killed is not None and recovered_s is None, (number, status, body)
            assert status == 503, (number, status, body)
            assert "Triton" in body["error"] or "not ready" in body["error"], body
            outage.append(body["error"])
            time.sleep(1.0)
            continue
        if killed is not None and recovered_s is None:
            recovered_s = time.monotonic() - killed
        elif number > 0:  # neither the first frame nor the first after the outage
            latencies.append(response.seconds)
        ids.append(check_answer(body, number, faces))
    if recovered_s is None:
        raise ComposeCheckError(
            f"the tracker did not answer again within {len(frames) - KILL_AFTER} frames "
            f"after Triton was killed; Triton's log:\n{stack.logs('triton')}"
        )
    assert outage, "no 503 while Triton was down"
    triton_after, tracker_after = stack.inspect("triton"), stack.inspect("tracker")
    assert triton_after["RestartCount"] > triton_before["RestartCount"], "Triton not restarted"
    assert tracker_after["RestartCount"] == tracker_before["RestartCount"] == 0
    assert tracker_after["State"]["StartedAt"] == tracker_before["State"]["StartedAt"]
    assert len(set(ids)) == 1, f"identities changed: {ids}"
    return {
        "latencies_s": latencies,
        "outage_error": outage[0],
        "outage_frames": len(outage),
        "answered_after_outage": len(frames) - KILL_AFTER - len(outage),
        "recovered_s": recovered_s,
    }


def check_security(stack: Stack) -> None:
    """Unprivileged, read-only root, no capabilities, no secret in the environment or mounts."""
    tracker = stack.inspect("tracker")
    assert tracker["Config"]["User"] == "10001:10001", tracker["Config"]["User"]
    assert tracker["HostConfig"]["ReadonlyRootfs"] is True
    assert tracker["HostConfig"]["CapDrop"] == ["ALL"]
    names = [entry.split("=", 1)[0] for entry in tracker["Config"]["Env"]]
    assert not [n for n in names if any(w in n.upper() for w in SECRET_WORDS)], names
    assert not [m for m in tracker["Mounts"] if "secret" in m["Destination"]], tracker["Mounts"]
    who = stack.python("tracker", "import os; print(os.getuid())")
    assert who.stdout.strip() == "10001", who
    write = stack.python("tracker", "open('/app/x', 'w')")
    assert write.returncode != 0 and "Read-only file system" in write.stderr, write.stderr


def check_metrics(urls: dict[str, str], frames: int) -> dict[str, float]:
    """Both ``/metrics`` pages: the tracker counted the answered frames, Triton ran the models."""
    tracker = metrics_at(urls["tracker_metrics"])
    answered = sum(
        v for (name, labels), v in tracker.items()
        if name == "tracker_requests" and dict(labels).get("status") == "200"
    )
    assert answered >= frames, f"tracker_requests with status 200: {answered} < {frames}"
    triton = metrics_at(urls["triton_metrics"])
    success = {
        dict(labels)["model"]: v for (name, labels), v in triton.items()
        if name == "nv_inference_request_success"
    }
    assert all(success.get(m, 0) > 0 for m in (HMR2.name, SMPL.name)), success
    return {"tracker_requests_200": answered, **{f"triton_{m}": v for m, v in success.items()}}


def check_graceful_stop(
    stack: Stack, client: ServiceClient, image: str, faces: np.ndarray
) -> float:
    """``docker compose stop`` while a request is in flight: it is answered, exit code 0."""
    answers: list[Response] = []
    poster = threading.Thread(
        target=lambda: answers.append(client.post_frame(image, frame_number=0, session_id="stop"))
    )
    poster.start()
    time.sleep(0.05)  # the request has reached the service
    start = time.monotonic()
    stack.compose("stop", "tracker", timeout_s=TIMEOUTS_S["stop"] + GRACE_S)
    stop_s = time.monotonic() - start
    poster.join()
    assert answers, "the request in flight got no answer (the client's error is above)"
    assert answers[0].status == 200, answers[0].body[:300]
    check_answer(answers[0].answer(), 0, faces)
    state = stack.inspect("tracker")["State"]
    assert state["ExitCode"] == 0 and not state["OOMKilled"], state
    assert stop_s < GRACE_S, stop_s
    return stop_s


def started_after_healthy(stack: Stack, since: float) -> None:
    """The tracker's container started after Triton turned healthy (the engine's events)."""
    lines = stack.docker(
        "events", "--since", f"{since:.0f}", "--until", f"{time.time():.0f}",
        "--filter", f"label=com.docker.compose.project={PROJECT}", "--format", "{{json .}}",
    ).splitlines()
    events = [json.loads(line) for line in lines]

    def first(service: str, status: str) -> int:
        times = [
            e["timeNano"] for e in events
            if e.get("Action", e.get("status")) == status
            and e["Actor"]["Attributes"].get("com.docker.compose.service") == service
        ]
        assert times, f"no {status!r} event of {service} since the start"
        return min(times)

    assert first("triton", "health_status: healthy") <= first("tracker", "start")


def image_mb(stack: Stack, image: str) -> float:
    """An image's size in MB."""
    return int(stack.docker("image", "inspect", "-f", "{{.Size}}", image)) / 1e6


def local_latencies(models: Path, frames: Sequence[str]) -> list[float]:
    """The same frames through the same stack without containers (``local_stack``)."""
    port, http, grpc, metrics = free_ports(4)
    with local_stack(repository=models, port=port, triton_ports=(http, grpc, metrics)) as stack:
        client = ServiceClient(stack[0])
        answers = [
            client.post_frame(image, frame_number=n, session_id="local")
            for n, image in enumerate(frames)
        ]
    assert all(answer.status == 200 for answer in answers)
    return [answer.seconds for answer in answers]


def ms(latencies: Sequence[float]) -> dict[str, float]:
    """p50 and p95 of latencies in seconds, in milliseconds."""
    return {f"p{q}": 1000.0 * float(np.percentile(latencies, q)) for q in (50, 95)}


def markdown(figures: dict[str, Any]) -> str:
    """The figures as the README's Markdown table."""
    c, local = figures["containers_ms"], figures["local_ms"]
    return "\n".join([
        f"Machine: {figures['machine']}; `make test-compose` ({figures['frames']} frames of "
        f"runner.mp4, 640x360 PNG, tiny model set), total {figures['total_s']:.0f} s.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| tracker image (`docker/tracker.Dockerfile`) | {figures['tracker_image_mb']:.0f} MB |",
        f"| Triton CPU image (`docker/triton-cpu.Dockerfile`) | "
        f"{figures['triton_image_mb']:.0f} MB |",
        f"| build of both images ({figures['build_cache']}) | {figures['build_s']:.0f} s |",
        f"| `docker compose up` to `/health` ready | {figures['up_to_ready_s']:.1f} s |",
        f"| per frame through the containers, p50 / p95 | {c['p50']:.0f} / {c['p95']:.0f} ms |",
        f"| per frame, same stack without containers, p50 / p95 | {local['p50']:.0f} / "
        f"{local['p95']:.0f} ms |",
        f"| Triton killed: tracker answering again after | {figures['recovered_s']:.1f} s |",
        f"| `docker compose stop` of the tracker, a request in flight | "
        f"{figures['stop_s']:.1f} s |",
    ])


def check(compose_bin: str) -> dict[str, Any]:
    """Every step in order; returns the figures."""
    started = time.monotonic()
    models = prepare_models()
    frames = posted_frames(FRAMES)
    faces = np.load(models / SMPL.name / "1" / SMPL_FACES_FILE)
    tracker_port, *triton_ports = free_ports(4)
    env = {
        **os.environ,
        **dict(zip(TEST_VARIABLES, map(str, (models, tracker_port, *triton_ports)), strict=True)),
    }
    metrics = triton_ports[2]
    url = f"http://127.0.0.1:{tracker_port}"
    urls = {
        "tracker_metrics": f"{url}/metrics",
        "triton_metrics": f"http://127.0.0.1:{metrics}/metrics",
    }
    probe = ServiceClient(url, timeout_s=HEALTH_TIMEOUT_S)
    stack = Stack(compose_bin, env)
    stack.compose("down", "--volumes", "--remove-orphans")
    figures: dict[str, Any] = {"machine": machine(), "frames": FRAMES}
    try:
        cached = all(
            subprocess.run(["docker", "image", "inspect", name], env=env, capture_output=True,
                           check=False).returncode == 0
            for name in ("pose-tracker/tracker:0.1.0", "pose-tracker/triton-cpu:2.51.0")
        )
        figures["build_cache"] = "layers cached" if cached else "no cached layers"
        start = time.monotonic()
        _log.info("building the images")
        stack.compose("build", "triton", "tracker", timeout_s=TIMEOUTS_S["build"])
        figures["build_s"] = time.monotonic() - start
        figures["tracker_image_mb"] = image_mb(stack, "pose-tracker/tracker:0.1.0")
        figures["triton_image_mb"] = image_mb(stack, "pose-tracker/triton-cpu:2.51.0")

        _log.info("docker compose up")
        start, since = time.monotonic(), time.time() - 1
        stack.compose("up", "--detach", "--no-build", timeout_s=TIMEOUTS_S["up"])
        stack.wait(
            "the tracker's /health turning ready",
            probe.is_ready,
            TIMEOUTS_S["ready"], "tracker",
        )
        figures["up_to_ready_s"] = time.monotonic() - start
        started_after_healthy(stack, since)
        check_security(stack)

        _log.info("video through the containers, Triton killed mid-video")
        client = ServiceClient(url)
        video = run_video(stack, client, frames, faces)
        figures["containers_ms"] = ms(video.pop("latencies_s"))
        figures.update(video)
        figures["metrics"] = check_metrics(urls, FRAMES - video["outage_frames"])

        _log.info("docker compose stop with a request in flight")
        figures["stop_s"] = check_graceful_stop(stack, client, frames[0], faces)
    except BaseException:
        for service in ("triton", "tracker"):
            _log.error("last lines of %s's log:\n%s", service, stack.logs(service))
        raise
    finally:
        stack.compose("down", "--volumes", "--remove-orphans")

    _log.info("the same frames without containers")
    figures["local_ms"] = ms(local_latencies(models, frames)[1:])  # as through the containers
    figures["total_s"] = time.monotonic() - started
    return figures
