"""The job queue's contract (tests/unit/.../jobs/test_store.py) on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.tracker_service.jobs.test_store import (  # noqa: F401 (the contract's tests)
    test_a_dead_workers_job_is_claimed_again_then_ended_after_max_attempts,
    test_cancel_a_queued_job_ends_it,
    test_concurrent_claims_never_take_one_job_twice,
    test_fifo_claims_positions_and_the_queue_bound,
    test_heartbeat_progress_cancel_and_fenced_end,
    test_records_round_trip_and_states,
    test_release_queues_the_job_again_without_counting_the_run,
)
from tracker_service.jobs.store import JobStore, PostgresJobStore, open_store
from tracker_tools.cluster import LocalPostgres


@pytest.fixture
def location(postgres: LocalPostgres) -> str:
    return postgres.url


@pytest.fixture
def store(location: str) -> Iterator[JobStore]:
    store = open_store(location)
    assert isinstance(store, PostgresJobStore)
    yield store
    store._run("DROP TABLE jobs")
    store.close()


def test_a_lost_connection_is_opened_again(store: JobStore, postgres: LocalPostgres) -> None:
    import psycopg

    with psycopg.connect(postgres.url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = 'tracker' AND pid <> pg_backend_pid()"
        )
    assert store.counts()["queued"] == 0, "the store reconnects"
