import dataclasses
import logging

import pytest

from tracker_service.settings import Settings, env_name, settings_table


def test_defaults_are_the_documented_ones():
    settings = Settings()
    assert (settings.host, settings.port, settings.threads) == ("0.0.0.0", 5000, 16)
    assert (settings.triton_url, settings.triton_protocol) == ("localhost:8001", "grpc")
    assert (settings.detector_model, settings.hmr2_model, settings.smpl_model) == (
        "person_detector", "hmr2", "smpl",
    )
    assert (settings.max_age, settings.n_init) == (50, 5)


def test_settings_are_frozen_and_keyword_only():
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        Settings("0.0.0.0")  # type: ignore[misc]


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
    assert settings.port == 8080 and settings.threads == 4
    assert settings.triton_url == "triton:8000" and settings.triton_protocol == "http"
    assert settings.min_score == 0.5 and settings.max_body_bytes == 1_000_000
    assert settings.log_level == "DEBUG" and settings.model_version == "hmr2-official"


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
        ({"TRACKER_PORT": "0"}, "port must be positive"),
        ({"TRACKER_PORT": "70000"}, "port must be at most 65535"),
        ({"TRACKER_MIN_SCORE": "1.5"}, r"min_score must lie in \[0, 1\]"),
        ({"TRACKER_TRITON_PROTOCOL": "udp"}, "triton_protocol must be one of"),
        ({"TRACKER_LOG_LEVEL": "LOUD"}, "log_level must be one of"),
        ({"TRACKER_REORDER_WAIT_S": "-1"}, "reorder_wait_s must be >= 0"),
        ({"TRACKER_TRITON_URL": ""}, "triton_url must not be empty"),
        ({"TRACKER_SMOOTHING": "2"}, r"smoothing must be one of \(0, 1\)"),
        ({"TRACKER_SMOOTHING_STRENGTH": "0"}, "smoothing_strength must be positive"),
    ],
)
def test_from_env_rejects_bad_values_naming_them(environ, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env(environ)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"port": "5000"}, TypeError),
        ({"port": 5000.0}, TypeError),
        ({"threads": True}, TypeError),
        ({"min_score": "0.3"}, TypeError),
        ({"max_sessions": 0}, ValueError),
    ],
)
def test_types_are_checked(kwargs, error):
    with pytest.raises(error):
        Settings(**kwargs)


def test_int_is_accepted_for_a_float_setting():
    assert Settings(min_score=1).min_score == 1.0


def test_table_lists_every_setting_with_its_default():
    table = settings_table()
    lines = table.strip().splitlines()
    assert lines[0] == "| variable | default | meaning |"
    assert len(lines) == 2 + len(dataclasses.fields(Settings))
    for field in dataclasses.fields(Settings):
        assert f"| `{env_name(field.name)}` | `{field.default}` |" in table


def test_readme_configuration_has_the_generated_table(repo_root):
    readme = (repo_root / "README.md").read_text()
    assert settings_table() in readme, (
        "README.md's settings table is out of date: paste "
        "`python -c 'from tracker_service.settings import settings_table; "
        "print(settings_table())'` into its Configuration section"
    )
