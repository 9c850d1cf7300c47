"""The compose check's command line (the check itself needs Docker: ``make test-compose``)."""

import os

from tests.unit.scripts.conftest import RunScript


def test_without_the_compose_binary_it_says_how_to_run_it(run_script: RunScript) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COMPOSE_BIN"}
    result = run_script("compose_check", env=env)
    assert result.returncode == 2
    assert "COMPOSE_BIN is not set: run scripts/compose_test.sh" in result.stderr
