"""The job queue's contract (tests/unit/.../jobs/test_store.py) on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

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


def test_replicas_starting_at_once_all_open_the_store(location: str) -> None:
    """Processes creating the table at the same instant take turns instead of failing."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        stores = list(pool.map(lambda _: open_store(location), range(8)))
    try:
        assert all(store.counts()["queued"] == 0 for store in stores)
    finally:
        stores[0]._run("DROP TABLE jobs")
        for store in stores:
            store.close()
