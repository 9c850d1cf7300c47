import dataclasses
import logging

import pytest

from tracker_service.settings import (
    DetectionSettings,
    JobSettings,
    ServerSettings,
    Settings,
    TritonSettings,
    env_name,
    setting_fields,
    settings_table,
)

GROUPS = [f.name for f in dataclasses.fields(Settings)]


def test_defaults_are_the_documented_ones():
    server, triton, tracking = Settings().server, Settings().triton, Settings().tracking
    assert (server.host, server.port, server.threads) == ("0.0.0.0", 5000, 16)
    assert (triton.triton_url, triton.triton_protocol) == ("localhost:8001", "grpc")
    assert (triton.detector_model, triton.hmr2_model, triton.smpl_model) == (
        "person_detector", "hmr2", "smpl",
    )
    assert (tracking.max_age, tracking.n_init) == (50, 5)


def test_settings_and_their_groups_are_frozen_and_keyword_only():
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.server.port = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.jobs = JobSettings()  # type: ignore[misc]
    with pytest.raises(TypeError):
        Settings(ServerSettings())  # type: ignore[misc]
    with pytest.raises(TypeError):
        ServerSettings("0.0.0.0")  # type: ignore[misc]
    with pytest.raises(TypeError, match="Settings.jobs must be a JobSettings"):
        Settings(jobs=ServerSettings())  # type: ignore[arg-type]


#: One variable of each group, the group's attribute and a value that is not its default.
ONE_OF_EACH_GROUP = [
    ("TRACKER_PORT", "server", "port", "8080", 8080),
    ("TRACKER_TRITON_URL", "triton", "triton_url", "triton:8000", "triton:8000"),
    ("TRACKER_RELOAD_WAIT_S", "readiness", "reload_wait_s", "3", 3.0),
    ("TRACKER_MIN_BOX_PX", "detection", "min_box_px", "20", 20.0),
    ("TRACKER_N_INIT", "tracking", "n_init", "3", 3),
    ("TRACKER_MAX_SESSIONS", "sessions", "max_sessions", "7", 7),
    ("TRACKER_MODEL_VERSION", "answer", "model_version", "v2", "v2"),
    ("TRACKER_JOB_WORKERS", "jobs", "job_workers", "0", 0),
]


@pytest.mark.parametrize(("variable", "group", "name", "text", "value"), ONE_OF_EACH_GROUP)
def test_each_variable_lands_in_its_group(variable, group, name, text, value):
    settings = Settings.from_env({variable: text})
    assert getattr(getattr(settings, group), name) == value
    others = {g: getattr(settings, g) for g in GROUPS if g != group}
    assert others == {g: getattr(Settings(), g) for g in GROUPS if g != group}


def test_every_variable_is_in_one_group_and_every_group_is_tested():
    names = [env_name(f.name) for _, f in setting_fields()]
    assert len(names) == len(set(names))
    assert {group for group, _ in setting_fields()} == set(GROUPS)
    assert {group for _, group, *_ in ONE_OF_EACH_GROUP} == set(GROUPS)


def test_of_puts_each_value_in_its_group_and_refuses_unknown_names():
    settings = Settings.of(port=8080, job_workers=0, min_score=1)
    assert (settings.server.port, settings.jobs.job_workers) == (8080, 0)
    assert settings.detection.min_score == 1.0 and settings.triton == TritonSettings()
    with pytest.raises(TypeError, match="no setting is named 'prot'"):
        Settings.of(prot=5)


def test_from_env_converts_every_type():
    settings = Settings.from_env(
        {
            "TRACKER_PORT": "8080",
            "TRACKER_THREADS": " 4 ",
            "TRACKER_TRITON_URL": "triton:8000",
            "TRACKER_TRITON_PROTOCOL": "HTTP",
            "TRACKER_MIN_SCORE": "0.5",
            "TRACKER_MAX_BODY_BYTES": "1_000_000",
            "TRACKER_LOG_LEVEL": "debug",
            "TRACKER_MODEL_VERSION": "hmr2-official",
            "PATH": "/usr/bin",
        }
    )
    server, triton = settings.server, settings.triton
    assert server.port == 8080 and server.threads == 4
    assert triton.triton_url == "triton:8000" and triton.triton_protocol == "http"
    assert settings.detection.min_score == 0.5 and server.max_body_bytes == 1_000_000
    assert server.log_level == "DEBUG" and settings.answer.model_version == "hmr2-official"


def test_from_env_without_variables_gives_the_defaults():
    assert Settings.from_env({}) == Settings()


def test_unknown_tracker_variable_is_warned_about(caplog):
    with caplog.at_level(logging.WARNING):
        Settings.from_env({"TRACKER_PROT": "5"})
    assert "TRACKER_PROT" in caplog.text


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TRACKER_PORT": "http"}, "TRACKER_PORT='http'"),
        ({"TRACKER_PORT": "0"}, "TRACKER_PORT must be positive, got 0"),
        ({"TRACKER_PORT": "70000"}, "TRACKER_PORT must be at most 65535"),
        ({"TRACKER_MIN_SCORE": "1.5"}, r"TRACKER_MIN_SCORE must lie in \[0, 1\]"),
        ({"TRACKER_TRITON_PROTOCOL": "udp"}, "TRACKER_TRITON_PROTOCOL must be one of"),
        ({"TRACKER_LOG_LEVEL": "LOUD"}, "TRACKER_LOG_LEVEL must be one of"),
        ({"TRACKER_REORDER_WAIT_S": "-1"}, "TRACKER_REORDER_WAIT_S must be >= 0"),
        ({"TRACKER_TRITON_URL": ""}, "TRACKER_TRITON_URL must not be empty"),
        ({"TRACKER_SMOOTHING": "2"}, r"TRACKER_SMOOTHING must be one of \(0, 1\)"),
        ({"TRACKER_SMOOTHING_STRENGTH": "0"}, "TRACKER_SMOOTHING_STRENGTH must be positive"),
        ({"TRACKER_JOB_WORKERS": "-1"}, "TRACKER_JOB_WORKERS must be >= 0"),
        ({"TRACKER_JOB_HEARTBEAT_S": "20"}, "TRACKER_JOB_HEARTBEAT_S must be at most a third"),
        ({"TRACKER_ANSWER_BUDGET_BYTES": "1000"}, "TRACKER_ANSWER_BUDGET_BYTES must be at least"),
    ],
)
def test_from_env_rejects_bad_values_naming_them(environ, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env(environ)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"port": "5000"}, TypeError, "TRACKER_PORT must be int, got str '5000'"),
        ({"port": 5000.0}, TypeError, "TRACKER_PORT must be int"),
        ({"threads": True}, TypeError, "TRACKER_THREADS must be int"),
        ({"min_score": "0.3"}, TypeError, "TRACKER_MIN_SCORE must be float"),
        ({"max_sessions": 0}, ValueError, "TRACKER_MAX_SESSIONS must be positive"),
    ],
)
def test_types_are_checked_naming_the_variable(kwargs, error, message):
    with pytest.raises(error, match=message):
        Settings.of(**kwargs)


def test_int_is_accepted_for_a_float_setting():
    assert DetectionSettings(min_score=1).min_score == 1.0


def test_table_lists_every_setting_with_its_default():
    table = settings_table()
    lines = table.strip().splitlines()
    assert lines[0] == "| variable | group | default | meaning |"
    assert len(lines) == 2 + len(list(setting_fields()))
    for group, field in setting_fields():
        assert f"| `{env_name(field.name)}` | `{group}` | `{field.default}` |" in table


def test_readme_configuration_has_the_generated_table(repo_root):
    readme = (repo_root / "README.md").read_text()
    assert settings_table() in readme, (
        "README.md's settings table is out of date: paste "
        "`python -c 'from tracker_service.settings import settings_table; "
        "print(settings_table())'` into its Configuration section"
    )
