"""The service's settings, grouped by concern, read from ``TRACKER_*`` environment variables.

Nothing else in the service reads ``os.environ``: ``python -m tracker_service`` (and
``python -m tracker_service.worker``) call :meth:`Settings.from_env` once, and each resource
takes its group (``settings.triton``, ``settings.jobs``…). A group is a frozen, keyword-only
dataclass; the variable of a field is ``TRACKER_`` plus its name in upper case, whatever its
group (``settings.triton.triton_url`` is ``TRACKER_TRITON_URL``). Each field's metadata says
what it does and holds its constraints (:class:`Check`), beside its default;
:func:`settings_table` renders them as the README's configuration table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import Field, dataclass, field, fields
from typing import Any, cast

from tracker_service.model_spec import HMR2, PERSON_DETECTOR, SMPL, SMPL_FACES_FILE

log = logging.getLogger(__name__)

#: Prefix of every variable the service reads.
ENV_PREFIX = "TRACKER_"
#: Allowed values of ``TRACKER_TRITON_PROTOCOL``.
PROTOCOLS = ("grpc", "http")
#: Most bytes a frame of a job's answer takes when degraded to its bare form.
BARE_FRAME_BYTES = 1024
#: Allowed values of ``TRACKER_LOG_LEVEL``.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class Check:
    """A constraint on a setting's value, declared with its field.

    Attributes:
        holds: Whether a value meets it.
        words: What it requires, after "must" (``"be positive"``).

    """

    holds: Callable[[Any], bool]
    words: str


POSITIVE = Check(lambda v: v > 0, "be positive")
NON_NEGATIVE = Check(lambda v: v >= 0, "be >= 0")
NON_EMPTY = Check(bool, "not be empty")


def _at_most(limit: int) -> Check:
    return Check(lambda v: v <= limit, f"be at most {limit}")


def _one_of(choices: tuple[object, ...]) -> Check:
    return Check(lambda v: v in choices, f"be one of {choices}")


def _setting(default: Any, meaning: str, *checks: Check) -> Any:
    return field(default=default, metadata={"meaning": meaning, "checks": checks})


def env_name(field_name: str) -> str:
    """Return the environment variable of a setting, e.g. ``TRACKER_TRITON_URL``."""
    return ENV_PREFIX + field_name.upper()


@dataclass(frozen=True, kw_only=True)
class Group:
    """A group of settings, each value's type and constraints checked when it is built.

    Raises:
        TypeError: A value is not of its field's type; the message names its variable.
        ValueError: A value breaks a constraint; the message names its variable.

    """

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            expected = _type_of(f)
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, f.name, float(value))
            elif not isinstance(value, expected) or isinstance(value, bool):
                raise TypeError(
                    f"{env_name(f.name)} must be {expected.__name__}, "
                    f"got {type(value).__name__} {value!r}"
                )
        for f in fields(self):
            value = getattr(self, f.name)
            for check in f.metadata["checks"]:
                if not check.holds(value):
                    raise ValueError(f"{env_name(f.name)} must {check.words}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class ServerSettings(Group):
    """The HTTP server and its process (``python -m tracker_service``)."""

    host: str = _setting("0.0.0.0", "address the HTTP server binds to", NON_EMPTY)
    port: int = _setting(5000, "HTTP port of the legacy endpoints", POSITIVE, _at_most(65535))
    threads: int = _setting(
        16, "waitress worker threads: requests processed at once (raise it with more sessions)",
        POSITIVE,
    )
    shutdown_grace_s: float = _setting(
        30.0, "on SIGTERM/SIGINT, how long in-flight requests may take to finish",
        NON_NEGATIVE,
    )
    max_body_bytes: int = _setting(
        64 * 2**20, "largest request body, in bytes (413 beyond)", POSITIVE
    )
    replica_name: str = _setting(
        "", "answered in the `X-Served-By` header (affinity checks); empty: `hostname:port`"
    )
    log_level: str = _setting(
        "INFO", "`DEBUG`, `INFO` (one line per frame), `WARNING`…", _one_of(LOG_LEVELS)
    )


@dataclass(frozen=True, kw_only=True)
class TritonSettings(Group):
    """The Triton client: where it is, how it is asked, the served models' names."""

    triton_url: str = _setting(
        "localhost:8001", "Triton address, `host:port` (gRPC or HTTP port)", NON_EMPTY
    )
    triton_protocol: str = _setting(
        "grpc", "`grpc` (one shared client) or `http` (one client per thread)",
        _one_of(PROTOCOLS),
    )
    triton_timeout_s: float = _setting(30.0, "timeout of every Triton request", POSITIVE)
    detector_model: str = _setting(
        PERSON_DETECTOR.name, "person detector's name on Triton", NON_EMPTY
    )
    hmr2_model: str = _setting(HMR2.name, "HMR2's name on Triton", NON_EMPTY)
    smpl_model: str = _setting(SMPL.name, "body model's name on Triton", NON_EMPTY)
    smpl_faces: str = _setting(
        f"model_repository/{SMPL.name}/1/{SMPL_FACES_FILE}",
        "mesh triangles written by the exporter beside the body model, read once at start",
    )


@dataclass(frozen=True, kw_only=True)
class ReadinessSettings(Group):
    """Readiness, warm-up and model reload (``/health``, ``/warmup``, ``/reload``)."""

    health_cache_s: float = _setting(
        2.0, "how long a Triton readiness check is reused", NON_NEGATIVE
    )
    warmup_timeout_s: float = _setting(
        100.0,
        "`GET /warmup`: longest wait for Triton and the models to be ready (the backend's "
        "proxy waits 120 s)",
        NON_NEGATIVE,
    )
    reload_wait_s: float = _setting(
        8.0,
        "`POST /reload`: how long the answer waits for the reload; beyond, 202 and its "
        "progress in `/health` (the backend's proxy waits 10 s)",
        NON_NEGATIVE,
    )


@dataclass(frozen=True, kw_only=True)
class DetectionSettings(Group):
    """Which detected people the frame pipeline keeps (frames and jobs alike)."""

    min_score: float = _setting(
        0.3,
        "lowest person score the detector adapter keeps (0.3 suits the offline detector, "
        "0.5 D-FINE; see docs/detector.md)",
        Check(lambda v: 0.0 <= v <= 1.0, "lie in [0, 1]"),
    )
    min_box_px: float = _setting(
        12.0, "smallest person box width and height kept, in pixels", POSITIVE
    )


@dataclass(frozen=True, kw_only=True)
class TrackingSettings(Group):
    """The tracker each session and each job builds, and its live smoothing."""

    detection_threshold: float = _setting(
        0.3,
        "lowest person score the tracker matches to its tracks (PHALP's low_th_c); kept "
        "people below it are not tracked",
        Check(lambda v: 0.0 <= v <= 1.0, "lie in [0, 1]"),
    )
    max_age: int = _setting(
        50, "frames a track survives undetected (predicted) before it is deleted",
        POSITIVE,
    )
    n_init: int = _setting(5, "detections a new track needs before it is confirmed", POSITIVE)
    smoothing: int = _setting(
        1,
        "1: each track's body is smoothed live (One Euro filters on the joint rotations, "
        "camera and box; one shape per track); 0: HMR2's raw per-frame bodies",
        _one_of((0, 1)),
    )
    smoothing_strength: float = _setting(
        1.0, "divides the live filters' cutoffs: 2 smooths harder (more lag in fast motion)",
        POSITIVE,
    )


@dataclass(frozen=True, kw_only=True)
class SessionSettings(Group):
    """The ``/pose/hybrid`` sessions: how many, how long, frame reordering."""

    max_sessions: int = _setting(
        64, "sessions tracked at once; the longest idle one is evicted beyond this",
        POSITIVE,
    )
    session_idle_s: float = _setting(600.0, "a session idle this long is evicted", POSITIVE)
    new_video_idle_s: float = _setting(
        30.0, "a session idle this long starts a new video at its next frame",
        POSITIVE,
    )
    reorder_wait_s: float = _setting(
        30.0,
        "how long a frame ahead of the next expected one waits for the missing earlier "
        "frames (frames never received are then skipped)",
        NON_NEGATIVE,
    )


@dataclass(frozen=True, kw_only=True)
class AnswerSettings(Group):
    """What the answers name and read: the model version, the largest image."""

    model_version: str = _setting(
        "hmr2-phalp-1", "answered as `model_version`: names the model set being served"
    )
    max_image_pixels: int = _setting(
        40_000_000, "largest decoded image, width times height (413 beyond)",
        POSITIVE,
    )


@dataclass(frozen=True, kw_only=True)
class JobSettings(Group):
    """Whole-video jobs: the queue, its workers, their limits and the answers' budget."""

    job_database: str = _setting(
        "data/jobs.sqlite",
        "the job queue: a SQLite file (one machine; a volume in compose), or a "
        "`postgresql://user:password@host:5432/db` URL shared by API replicas and workers",
        NON_EMPTY,
    )
    job_data_dir: str = _setting(
        "data/jobs", "folder of the jobs' uploads, results and overlay videos (a volume)",
        NON_EMPTY,
    )
    job_workers: int = _setting(
        1,
        "videos this process runs at once (1: one GPU); 0: an API replica that only queues "
        "and reads jobs (`python -m tracker_service.worker` processes run them)",
        NON_NEGATIVE,
    )
    job_lease_s: float = _setting(
        30.0,
        "a running job's lease: a job whose worker stopped renewing it (killed, lost) this "
        "long is claimed by another worker (a second time: `error`)",
        POSITIVE,
    )
    job_heartbeat_s: float = _setting(
        2.0,
        "how often a worker stores its job's progress, renews the lease and reads a "
        "cancellation (at most a third of the lease)",
        POSITIVE,
    )
    job_poll_s: float = _setting(
        1.0, "how often an idle worker, and a request waiting for a job, read the queue",
        POSITIVE,
    )
    job_wait_s: float = _setting(
        600.0,
        "`POST /process_video`, `POST /pose/video`: longest wait for the job's end (the "
        "app gives up after 10 min); beyond, 504 in words with the job id to poll",
        POSITIVE,
    )
    job_queue_max: int = _setting(
        16, "jobs waiting at most; a submission beyond is a 429", POSITIVE
    )
    job_frames_in_flight: int = _setting(
        8, "frames of a job analysed at once, so that Triton batches them together", POSITIVE
    )
    job_max_bytes: int = _setting(
        512 * 2**20, "largest video upload, in bytes (413 beyond)", POSITIVE
    )
    job_max_frames: int = _setting(9000, "most frames a video may have (413 beyond)", POSITIVE)
    job_max_duration_s: float = _setting(
        600.0, "longest video, in seconds (413 beyond)", POSITIVE
    )
    job_retention_s: float = _setting(
        7 * 24 * 3600.0, "a finished job is deleted (record and files) this long after it ends",
        POSITIVE,
    )
    job_disk_budget_bytes: int = _setting(
        20 * 2**30, "the oldest finished jobs are deleted while the data folder is over this",
        POSITIVE,
    )
    job_log_every: int = _setting(
        25, "a job logs its progress every this many frames", POSITIVE
    )
    answer_budget_bytes: int = _setting(
        16 * 2**20,
        "most bytes of a job's status or synchronous answer; a result over it is answered "
        "degraded, said in its `answer_budget` (meshes, then timeline images, then poses "
        "of all but evenly spaced frames); every mesh stays at `GET /result/<id>`",
        POSITIVE,
    )
    video_folder: str = _setting(
        "", "the only folder `POST /pose/video` reads `video_path` from; empty: off (400)"
    )
    worker_metrics_port: int = _setting(
        9102, "`python -m tracker_service.worker`: port of its `/metrics`; 0: none",
        NON_NEGATIVE, _at_most(65535),
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        floor = BARE_FRAME_BYTES * self.job_max_frames + 2**20
        if self.answer_budget_bytes < floor:
            raise ValueError(
                f"{env_name('answer_budget_bytes')} must be at least {floor} "
                f"({BARE_FRAME_BYTES} bytes a frame for {env_name('job_max_frames')}="
                f"{self.job_max_frames}, and 1 MiB), got {self.answer_budget_bytes}"
            )
        if 3 * self.job_heartbeat_s > self.job_lease_s:
            raise ValueError(
                f"{env_name('job_heartbeat_s')} must be at most a third of "
                f"{env_name('job_lease_s')}, got {self.job_heartbeat_s} and {self.job_lease_s}"
            )


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every setting of the service, by group, each with its default.

    Attributes:
        server: The HTTP server and its process.
        triton: The Triton client and the served models' names.
        readiness: Readiness, warm-up and model reload.
        detection: Which detected people are kept.
        tracking: The trackers and their live smoothing.
        sessions: The ``/pose/hybrid`` sessions.
        answer: What the answers name and read.
        jobs: Whole-video jobs.

    """

    server: ServerSettings = field(default_factory=ServerSettings)
    triton: TritonSettings = field(default_factory=TritonSettings)
    readiness: ReadinessSettings = field(default_factory=ReadinessSettings)
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    sessions: SessionSettings = field(default_factory=SessionSettings)
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    jobs: JobSettings = field(default_factory=JobSettings)

    def __post_init__(self) -> None:
        for f in fields(self):
            kind = _group_class(f)
            if not isinstance(getattr(self, f.name), kind):
                raise TypeError(f"Settings.{f.name} must be a {kind.__name__}")

    @property
    def max_request_bytes(self) -> int:
        """The largest request body of any endpoint (a frame or a video upload)."""
        return max(self.server.max_body_bytes, self.jobs.job_max_bytes)

    @classmethod
    def of(cls, **values: Any) -> Settings:
        """Build settings from values named as their fields, each put in its group.

        ``Settings.of(port=8080, job_workers=0)`` is ``Settings(server=ServerSettings(
        port=8080), jobs=JobSettings(job_workers=0))``; the others keep their defaults.

        Raises:
            TypeError: A name is no setting's, or a value is not of its setting's type.
            ValueError: A value is out of range; the message names its variable.

        """
        groups: dict[str, dict[str, Any]] = {}
        owner = {f.name: group for group, f in setting_fields()}
        for name, value in values.items():
            if name not in owner:
                raise TypeError(f"no setting is named {name!r}")
            groups.setdefault(owner[name], {})[name] = value
        kinds = {f.name: _group_class(f) for f in fields(cls)}
        built: dict[str, Any] = {group: kinds[group](**given) for group, given in groups.items()}
        return cls(**built)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from ``TRACKER_*`` variables; the others keep their defaults.

        Args:
            environ: The environment, e.g. ``os.environ``.

        Returns:
            The settings.

        Raises:
            ValueError: A variable does not convert to its setting's type or is out of range;
                the message names the variable.

        """
        known = {env_name(f.name): f for _, f in setting_fields()}
        for name in sorted(set(environ) - set(known)):
            if name.startswith(ENV_PREFIX):
                log.warning("Ignoring unknown setting %s", name)
        values: dict[str, Any] = {}
        for name, f in known.items():
            if name in environ:
                try:
                    values[f.name] = _convert(environ[name].strip(), _type_of(f))
                except ValueError as error:
                    raise ValueError(f"{name}={environ[name]!r}: {error}") from error
        if "log_level" in values:
            values["log_level"] = values["log_level"].upper()
        if "triton_protocol" in values:
            values["triton_protocol"] = values["triton_protocol"].lower()
        try:
            return cls.of(**values)
        except (TypeError, ValueError) as error:
            raise ValueError(f"invalid {ENV_PREFIX}* setting: {error}") from error


def _group_class(f: Field[Any]) -> type[Group]:
    return cast("type[Group]", f.default_factory)


def setting_fields() -> Iterator[tuple[str, Field[Any]]]:
    """Every setting's field, with the name of its group in :class:`Settings`, in order."""
    for group in fields(Settings):
        for f in fields(_group_class(group)):
            yield group.name, f


#: Python type of each annotation (annotations are strings under ``from __future__``).
_TYPES: dict[str, type] = {"str": str, "int": int, "float": float}


def _type_of(f: Field[Any]) -> type:
    return _TYPES[f.type if isinstance(f.type, str) else f.type.__name__]


def _convert(text: str, kind: type) -> Any:
    if kind is int:
        return int(text.replace("_", ""))
    if kind is float:
        return float(text)
    return text


def settings_table() -> str:
    """Render the configuration table as Markdown, for the README.

    One row a variable (its group in :class:`Settings`, its default, its meaning), group by
    group.
    """
    rows = ["| variable | group | default | meaning |", "| --- | --- | --- | --- |"]
    for group, f in setting_fields():
        rows.append(
            f"| `{env_name(f.name)}` | `{group}` | `{f.default}` | {f.metadata['meaning']} |"
        )
    return "\n".join(rows) + "\n"
