"""Scale out for real: PostgreSQL, one Triton, 2 API replicas, 2 job workers, nginx in front.

Every process is real and talks over real sockets: the API replicas (``python -m
tracker_service``, ``TRACKER_JOB_WORKERS=0``) only queue and read jobs; the workers
(``python -m tracker_service.worker``) run them; both share the PostgreSQL queue and one
artifact folder; nginx hashes ``X-Session-Id`` consistently over the replicas.

1. *1 vs 2 workers*: the same 6 jobs (runner.mp4's first frames) with worker 1 alone, then
   with both: the ratio of wall times is a figure (2 cores here: Triton, both workers and
   the replicas share them, so it stays far from 2).
2. *Chaos*: 6 jobs and 3 per-frame sessions at once through the proxy, status polled all
   along; worker 1 is SIGKILLed mid-job (and restarted, as Kubernetes would), the API
   replica serving session 0 is SIGKILLed mid-session and restarted. Every job completes
   with every frame answered and one identity, every frame request and every status
   request is answered, every session keeps its identity; the time until the dead
   worker's job is claimed again is a figure.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.integration.test_video_jobs import runner_frames
from tests.scale.conftest import FIGURES
from tracker_service.model_spec import SMPL, SMPL_FACES_FILE
from tracker_tools.client import ClientError, ServiceClient
from tracker_tools.cluster import Child, LocalNginx, LocalPostgres, tracker_process
from tracker_tools.media import encode_base64, write_video
from tracker_tools.triton_server import LocalTritonServer, free_ports

pytestmark = pytest.mark.integration

JOBS = 6
CLIP_FRAMES = 16
SESSIONS = 3
SESSION_FRAMES = 40
#: Short leases, so that a dead worker's job is claimed again within seconds.
LEASE_S, HEARTBEAT_S = 6.0, 1.0
#: The longest any wait may take: each says what did not come up.
UP_S, JOBS_S = 90.0, 240.0
#: The backend's limit for a status answer.
STATUS_S = 10.0


@dataclass
class Cluster:
    folder: Path
    postgres: LocalPostgres
    proxy: LocalNginx
    apis: list[Child]
    api_ports: list[int]
    workers: list[Child]
    start_worker: Any
    client: ServiceClient
    clip: bytes
    children: list[Child] = field(default_factory=list)

    def logs(self) -> str:
        return "\n".join(f"--- {c.name}\n{c.tail(15)}" for c in self.children)


def _ready(client: ServiceClient) -> bool:
    try:
        return client.request("GET", "/health", timeout_s=2).status == 200
    except ClientError:
        return False


@pytest.fixture(scope="module")
def cluster(
    postgres: LocalPostgres,
    nginx_installed: None,
    triton_server: LocalTritonServer,
    production_repository: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("scale")
    faces = production_repository / SMPL.name / "1" / SMPL_FACES_FILE
    common = {
        "TRACKER_JOB_DATABASE": postgres.url,
        "TRACKER_JOB_DATA_DIR": str(folder / "artifacts"),
        "TRACKER_TRITON_URL": triton_server.grpc_url,
        "TRACKER_SMPL_FACES": str(faces),
        "TRACKER_JOB_LEASE_S": str(LEASE_S),
        "TRACKER_JOB_HEARTBEAT_S": str(HEARTBEAT_S),
        "TRACKER_JOB_POLL_S": "0.25",
        "TRACKER_JOB_FRAMES_IN_FLIGHT": "4",
        "TRACKER_LOG_LEVEL": "INFO",
    }
    *api_ports, proxy_port, m1, m2 = free_ports(5)
    apis = [
        tracker_process(
            f"api-{i + 1}", "tracker_service", folder / f"api-{i + 1}.log",
            {**common, "TRACKER_HOST": "127.0.0.1", "TRACKER_PORT": str(port),
             "TRACKER_JOB_WORKERS": "0", "TRACKER_REPLICA_NAME": f"api-{i + 1}"},
        )  # fmt: skip
        for i, port in enumerate(api_ports[:2])
    ]
    workers = [
        tracker_process(
            f"worker-{i + 1}", "tracker_service.worker", folder / f"worker-{i + 1}.log",
            {**common, "TRACKER_JOB_WORKERS": "1", "TRACKER_WORKER_METRICS_PORT": str(port)},
        )
        for i, port in enumerate((m1, m2))
    ]
    proxy = LocalNginx(proxy_port, [f"127.0.0.1:{p}" for p in api_ports[:2]])
    clip_path = write_video(folder / "runner.mp4", runner_frames(CLIP_FRAMES), fps=30.0)

    def start_worker(worker: Child, port: int) -> None:
        worker.start()
        metrics = ServiceClient(f"http://127.0.0.1:{port}")
        worker.wait_until(lambda: _ready_metrics(metrics), UP_S, f"{worker.name}'s /metrics")

    cluster = Cluster(
        folder, postgres, proxy, apis, api_ports[:2], workers,
        lambda i: start_worker(workers[i], (m1, m2)[i]),
        ServiceClient(proxy.url, timeout_s=120), clip_path.read_bytes(),
        children=[*apis, *workers, proxy],
    )  # fmt: skip
    try:
        for api in apis:
            api.start()
        for api, port in zip(apis, api_ports, strict=False):
            api.wait_until(
                lambda p=port: _ready(ServiceClient(f"http://127.0.0.1:{p}")), UP_S,
                f"{api.name} answering /health with 200",
            )  # fmt: skip
        proxy.start()
        proxy.wait_ready(UP_S)
        cluster.start_worker(0)
        yield cluster
    finally:
        for child in reversed(cluster.children):
            child.stop()


def _ready_metrics(client: ServiceClient) -> bool:
    try:
        return client.request("GET", "/metrics", timeout_s=2).status == 200
    except ClientError:
        return False


def _submit(cluster: Cluster, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        answer = cluster.client.upload_video("/process_video_async", cluster.clip).answer()
        assert answer["status"] == "accepted", answer
        ids.append(answer["job_id"])
    return ids


def _wait_all(cluster: Cluster, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Every job's final status (with its result), polled through the proxy."""
    deadline = time.monotonic() + JOBS_S
    finals: dict[str, dict[str, Any]] = {}
    while len(finals) < len(ids):
        for job_id in ids:
            if job_id in finals:
                continue
            status = cluster.client.request("GET", f"/job_status/{job_id}?frames=0").answer()
            if status["status"] in ("complete", "error"):
                finals[job_id] = cluster.client.request("GET", f"/job_status/{job_id}").answer()
        if time.monotonic() > deadline:
            pending = [j for j in ids if j not in finals]
            pytest.fail(f"jobs not ended within {JOBS_S:.0f} s: {pending}\n{cluster.logs()}")
        time.sleep(0.5)
    return finals


def _assert_complete(final: dict[str, Any]) -> None:
    assert final["status"] == "complete", final.get("error")
    result = final["result"]
    frames = result["frames"]
    assert len(frames) == result["total_frames"] == CLIP_FRAMES
    assert [f["originalFrameNumber"] for f in frames] == list(range(CLIP_FRAMES))
    assert all(f["has3D"] for f in frames), "every frame is answered with a body"
    assert {f["personId"] for f in frames} == {result["main_person_id"]}, "one identity"


def test_two_workers_share_the_queue(cluster: Cluster) -> None:
    seconds = []
    for workers in (1, 2):
        if workers == 2:
            cluster.start_worker(1)
        started = time.monotonic()
        ids = _submit(cluster, JOBS)
        finals = _wait_all(cluster, ids)
        seconds.append(time.monotonic() - started)
        for final in finals.values():
            _assert_complete(final)
    FIGURES["jobs"] = f"{JOBS} jobs of {CLIP_FRAMES} frames (runner.mp4, 640x360, tiny models)"
    FIGURES["1 worker: seconds for the jobs"] = round(seconds[0], 1)
    FIGURES["2 workers: seconds for the same jobs"] = round(seconds[1], 1)
    FIGURES["speed-up of 2 workers over 1"] = round(seconds[0] / seconds[1], 2)


@dataclass
class Session:
    session_id: str
    answers: list[tuple[int, dict[str, Any], str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _stream(cluster: Cluster, session: Session, images: list[str], done: threading.Event) -> None:
    for number, image in enumerate(images):
        body = {"image_base64": image, "frame_number": number}
        headers = {"X-Session-Id": session.session_id, "Content-Type": "application/json"}
        try:
            reply = cluster.client.request(
                "POST", "/pose/hybrid", json.dumps(body).encode(), headers
            )
            served_by = reply.headers.get("X-Served-By", "")
            session.answers.append((reply.status, reply.json(), served_by))
        except ClientError as error:
            session.errors.append(f"frame {number}: {error}")
        time.sleep(0.2)  # a phone's pace, so that the sessions span the kills
    done.set()


def _poll_statuses(
    cluster: Cluster, ids: list[str], stop: threading.Event, seen: list[tuple[int, float]]
) -> None:
    while not stop.is_set():
        for job_id in ids:
            try:
                reply = cluster.client.request(
                    "GET", f"/job_status/{job_id}?frames=0", timeout_s=STATUS_S
                )
                seen.append((reply.status, reply.seconds))
            except ClientError:
                seen.append((0, STATUS_S))
        time.sleep(0.5)


def _held_job(postgres: LocalPostgres, pid: int) -> tuple[str, int] | None:
    """The job the worker process ``pid`` holds, and its frames done, or None."""
    with psycopg.connect(postgres.url) as db:
        row = db.execute(
            "SELECT job_id, progress FROM jobs WHERE status = 'processing' AND "
            "lease_owner LIKE %s", (f"%-{pid}-%",),
        ).fetchone()  # fmt: skip
    if row is None:
        return None
    progress = json.loads(row[1]) if row[1] else {}
    return row[0], int(progress.get("frames_done", 0))


def _lease_left(postgres: LocalPostgres, job_id: str) -> float:
    """Seconds until the job's lease runs out (the database's clock)."""
    with psycopg.connect(postgres.url) as db:
        row = db.execute(
            "SELECT lease_until - EXTRACT(EPOCH FROM clock_timestamp())::DOUBLE PRECISION "
            "FROM jobs WHERE job_id = %s", (job_id,),
        ).fetchone()  # fmt: skip
    assert row is not None
    return float(row[0])


def _attempts(postgres: LocalPostgres, job_id: str) -> tuple[str, int]:
    with psycopg.connect(postgres.url) as db:
        row = db.execute(
            "SELECT status, attempts FROM jobs WHERE job_id = %s", (job_id,)
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_nothing_is_lost_when_a_worker_and_a_replica_die(cluster: Cluster) -> None:
    if not cluster.workers[1].running():
        cluster.start_worker(1)
    images = [encode_base64(f) for f in runner_frames(SESSION_FRAMES)]
    ids = _submit(cluster, JOBS)
    sessions = [Session(f"scale-{i}") for i in range(SESSIONS)]
    stop, statuses = threading.Event(), []
    ended = [threading.Event() for _ in sessions]
    with ThreadPoolExecutor(SESSIONS + 1) as pool:
        poller = pool.submit(_poll_statuses, cluster, ids, stop, statuses)
        streams = [
            pool.submit(_stream, cluster, s, images, e)
            for s, e in zip(sessions, ended, strict=True)
        ]
        try:
            # A worker dies mid-job: SIGKILL once it has analysed some frames.
            victim = cluster.workers[0]
            deadline = time.monotonic() + JOBS_S
            while (held := _held_job(cluster.postgres, victim.pid)) is None:
                assert time.monotonic() < deadline, f"worker-1 ran no job\n{cluster.logs()}"
                time.sleep(0.05)
            victim.kill()
            killed_at = time.monotonic()
            lease_left_s = _lease_left(cluster.postgres, held[0])
            cluster.start_worker(0)  # restarted, as a Deployment would
            # The API replica serving session 0 dies mid-session, and comes back.
            while len(sessions[0].answers) < 3:
                assert not ended[0].is_set() and time.monotonic() < deadline, "no session"
                time.sleep(0.05)
            replica = int(sessions[0].answers[-1][2].removeprefix("api-")) - 1
            api, port = cluster.apis[replica], cluster.api_ports[replica]
            api.kill()
            time.sleep(2.0)
            api.start()
            api.wait_until(
                lambda: _ready(ServiceClient(f"http://127.0.0.1:{port}")), UP_S,
                f"{api.name} answering /health with 200 after its restart",
            )  # fmt: skip
            while _attempts(cluster.postgres, held[0])[1] < 2:
                assert time.monotonic() - killed_at < JOBS_S, "the dead worker's job stays"
                time.sleep(0.1)
            reclaimed_s = time.monotonic() - killed_at
            finals = _wait_all(cluster, ids)
            for event in ended:
                assert event.wait(JOBS_S), "a session's frames were not all posted in time"
        finally:
            stop.set()
        poller.result()
        for stream in streams:
            stream.result()

    for final in finals.values():
        _assert_complete(final)
    assert _attempts(cluster.postgres, held[0]) == ("complete", 2), "claimed again, run again"
    others = {_attempts(cluster.postgres, j) for j in ids if j != held[0]}
    assert others == {("complete", 1)}, "every other job ran once"
    failed = [s for s, _ in statuses if s != 200]
    assert not failed, f"{len(failed)} of {len(statuses)} status requests not answered 200"
    slowest = max(seconds for _, seconds in statuses)
    assert slowest < STATUS_S
    for session in sessions:
        assert not session.errors, session.errors
        codes = [code for code, _, _ in session.answers]
        assert codes == [200] * SESSION_FRAMES, f"{session.session_id}: {codes}"
        ids_seen = {a["track_id"] for _, a, _ in session.answers if a.get("track_id") is not None}
        assert len(ids_seen) == 1, f"{session.session_id} keeps one identity: {ids_seen}"
    served = {s.session_id: sorted({r for _, _, r in s.answers}) for s in sessions}
    FIGURES["jobs and frames lost"] = 0
    FIGURES["status requests answered"] = f"all {len(statuses)}, the slowest in {slowest:.2f} s"
    FIGURES["frame requests answered"] = f"all {SESSIONS * SESSION_FRAMES}"
    FIGURES["seconds from the kill until its lease ran out"] = round(lease_left_s, 1)
    FIGURES["seconds until the dead worker's job was claimed again"] = round(reclaimed_s, 1)
    FIGURES["lease, heartbeat (s)"] = f"{LEASE_S}, {HEARTBEAT_S}"
    FIGURES["replicas that served each session"] = served
