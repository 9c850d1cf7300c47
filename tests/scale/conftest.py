"""``make test-scale``: a real PostgreSQL server and nginx (Debian's, installed by the target).

The Triton fixtures are the integration tests' (one ``tritonserver``, the tiny model set).
PostgreSQL and nginx missing: the tests skip and say why, except under ``CI=1``, where
``make test-scale`` has installed them and a skip would hide a failure.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import (  # noqa: F401 (fixtures)
    local_server_factory,
    production_repository,
    triton_server,
    triton_venv,
)
from tracker_tools.cluster import LocalPostgres, nginx_bin, postgres_bin
from tracker_tools.triton_server import free_ports

#: Figures the tests measured, printed at the end of the run (and written to
#: ``$SCALE_FIGURES`` when set).
FIGURES: dict[str, Any] = {}


def require(present: bool, reason: str) -> None:
    """Skip (fail under CI) when an optional resource is missing."""
    if not present:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """A PostgreSQL server of its own, on a free port; stopped by PID."""
    require(
        postgres_bin() is not None,
        "PostgreSQL is not installed: `make test-scale` installs it (apt-get install postgresql)",
    )
    with LocalPostgres(free_ports(1)[0]) as server:
        server.wait_ready()
        yield server


@pytest.fixture(scope="session")
def nginx_installed() -> None:
    """nginx is installed (the proxy of the scale test)."""
    require(nginx_bin() is not None, "nginx is not installed: `make test-scale` installs it")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the figures measured."""
    if not FIGURES:
        return
    terminalreporter.section("scale figures")
    for name, value in FIGURES.items():
        terminalreporter.write_line(f"{name}: {value}")
    target = os.environ.get("SCALE_FIGURES")
    if target:
        with open(target, "w") as out:
            json.dump(FIGURES, out, indent=2)
