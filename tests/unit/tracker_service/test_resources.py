"""The application's resources: one key and one typed accessor each, closed in reverse order."""

import ast
import socket
from pathlib import Path

import numpy as np
import pytest
from flask import Flask

from tracker_service import resources
from tracker_service.app import create_app
from tracker_service.inference import TritonModels
from tracker_service.jobs.engine import JobEngine
from tracker_service.model_control import Reloader
from tracker_service.readiness import ReadinessCache
from tracker_service.service import PoseService
from tracker_service.sessions import SessionStore
from tracker_service.settings import Settings
from tracker_service.telemetry import ServiceMetrics
from tracker_service.tracking.smoothing import SmoothedTracker

#: Each accessor, its ``app.extensions`` key and the type it answers.
ACCESSORS = [
    (resources.settings, resources.SETTINGS, Settings),
    (resources.models, resources.MODELS, TritonModels),
    (resources.telemetry, resources.TELEMETRY, ServiceMetrics),
    (resources.readiness, resources.READINESS, ReadinessCache),
    (resources.reloader, resources.RELOADER, Reloader),
    (resources.sessions, resources.SESSIONS, SessionStore),
    (resources.jobs, resources.JOBS, JobEngine),
    (resources.frames, resources.FRAMES, PoseService),
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    faces = tmp_path / "faces.npy"
    np.save(faces, np.zeros((13776, 3), np.int32))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return Settings.of(
        triton_url=f"127.0.0.1:{port}", smpl_faces=str(faces),
        job_database=str(tmp_path / "jobs.sqlite"), job_data_dir=str(tmp_path / "jobs"),
    )  # fmt: skip


@pytest.fixture
def app(settings: Settings):
    app = create_app(settings)
    yield app
    resources.close(app)


def test_each_resource_has_its_own_key_and_typed_accessor(app: Flask, settings: Settings) -> None:
    with app.app_context():
        found = [accessor() for accessor, _, _ in ACCESSORS]
    for (_, key, kind), resource in zip(ACCESSORS, found, strict=True):
        assert isinstance(resource, kind) and app.extensions[key] is resource
    assert len({id(resource) for resource in found}) == len(ACCESSORS)
    assert found[0] is settings


def test_each_resource_takes_its_group(app: Flask, settings: Settings) -> None:
    with app.app_context():
        assert resources.jobs().settings is settings.jobs
        assert resources.frames()._settings is settings.answer
        assert resources.models().names.hmr2 == settings.triton.hmr2_model


@pytest.mark.parametrize(("accessor", "key", "kind"), ACCESSORS)
def test_a_missing_resource_is_a_clear_error(accessor, key, kind) -> None:
    with Flask(__name__).app_context(), pytest.raises(LookupError, match=f"no '{key}' resource"):
        accessor()


def test_a_resource_of_another_type_is_a_clear_error() -> None:
    bare = Flask(__name__)
    bare.extensions[resources.JOBS] = object()
    with bare.app_context(), pytest.raises(TypeError, match="is a object, not a JobEngine"):
        resources.jobs()


def test_an_accessor_outside_an_application_says_so() -> None:
    with pytest.raises(RuntimeError, match="application context"):
        resources.frames()


def test_registering_twice_is_refused(app: Flask, settings: Settings) -> None:
    with app.app_context():
        models = resources.models()
    with pytest.raises(RuntimeError, match="registered already"):
        resources.init_app(app, settings, models, np.zeros(3))


def _recording(calls: list[str], name: str, original, *, fail: bool = False):
    def close(self) -> None:
        calls.append(name)
        original(self)
        if fail:
            raise RuntimeError(f"{name} failed to close")

    return close


def test_closing_is_in_reverse_order_of_registration(monkeypatch, settings: Settings) -> None:
    calls: list[str] = []
    monkeypatch.setattr(TritonModels, "close", _recording(calls, "models", TritonModels.close))
    monkeypatch.setattr(JobEngine, "close", _recording(calls, "jobs", JobEngine.close))
    app = create_app(settings)
    resources.close(app)
    assert calls == ["jobs", "models"], "the job workers stop before the Triton client closes"
    resources.close(app)  # closing twice does nothing
    assert calls == ["jobs", "models"]


def test_a_failure_to_close_still_closes_the_rest(monkeypatch, settings: Settings) -> None:
    calls: list[str] = []
    monkeypatch.setattr(TritonModels, "close", _recording(calls, "models", TritonModels.close))
    failing = _recording(calls, "jobs", JobEngine.close, fail=True)
    monkeypatch.setattr(JobEngine, "close", failing)
    app = create_app(settings)
    with pytest.raises(RuntimeError, match="jobs failed to close"):
        resources.close(app)
    assert calls == ["jobs", "models"]


@pytest.mark.parametrize(("smoothing", "smoothed"), [(1, True), (0, False)])
def test_sessions_track_as_their_groups_say(smoothing: int, smoothed: bool) -> None:
    settings = Settings.of(smoothing=smoothing, max_sessions=3, reorder_wait_s=0.0)
    store = resources.session_store(settings.sessions, settings.tracking, ServiceMetrics())
    session, ticket = store.begin("s", 0)
    assert isinstance(session._tracker, SmoothedTracker) is smoothed
    session.abandon(ticket)


def test_no_handler_reaches_into_app_extensions(repo_root: Path) -> None:
    for module in sorted((repo_root / "tracker_service" / "api").glob("*.py")):
        tree = ast.parse(module.read_text())
        names = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        assert "extensions" not in names, f"{module.name} reads app.extensions"


def test_a_resource_that_fails_to_build_closes_those_built_before(
    monkeypatch, settings: Settings
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(TritonModels, "close", _recording(calls, "models", TritonModels.close))

    def refuse(*_: object, **__: object) -> None:
        raise OSError("the job store is unreachable")

    monkeypatch.setattr(resources, "job_engine", refuse)
    with pytest.raises(OSError, match="unreachable"):
        create_app(settings)
    assert calls == ["models"]
