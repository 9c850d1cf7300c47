"""The job queue: one record per job, in SQLite (embedded) or PostgreSQL (shared).

One interface, :class:`JobStore`: enqueue (:meth:`~JobStore.insert`), claim with a lease,
heartbeat (progress, and the cancel flag back), end (complete or error), release (a worker
stopping), cancel, queue position, read. :func:`open_store` picks the implementation from
one setting: a ``postgresql://`` URL is :class:`PostgresJobStore`, anything else the path
of a :class:`SqliteJobStore` file. Results and overlay videos are files in the job's folder
(a volume every replica mounts); only the small record lives here.

Why a plain ``FOR UPDATE SKIP LOCKED`` claim rather than procrastinate or pgqueuer: the
record already *is* the queue. The status endpoints read a job's state, progress, queue
position and error from it within milliseconds on any replica, cancellation is a flag on
it, and the embedded default is SQLite, which neither library runs on. Both libraries keep
their own job tables, worker loops and retry policies, so this table would stay beside
theirs and the two would have to agree. The claim here is one statement (below), as safe:

- *no double claim*: ``SKIP LOCKED`` makes concurrent claims lock different rows (SQLite
  runs one writer at a time, so the same statement is atomic there);
- *never lost*: a claim takes a lease (``lease_until``, the database's clock) that the
  worker's heartbeat renews; a job whose lease ran out (its worker died) is claimable
  again, with ``attempts`` bounded (:meth:`JobStore.expire` ends it ``error`` in words);
- *never two live runs*: every write of a running job names the claim's owner, so a worker
  that lost its lease (stalled past it) changes nothing, and its next heartbeat stops it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

#: The job states, exactly as ``VIDEO_API.md`` spells them.
QUEUED, PROCESSING, COMPLETE, ERROR = "queued", "processing", "complete", "error"
STATES = (QUEUED, PROCESSING, COMPLETE, ERROR)

# DOUBLE PRECISION: Unix seconds need float8 in PostgreSQL (SQLite reads it as REAL).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    video TEXT NOT NULL,
    owns_video INTEGER NOT NULL,
    max_frames INTEGER,
    created_at DOUBLE PRECISION NOT NULL,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    error_status INTEGER,
    progress TEXT,
    lease_owner TEXT,
    lease_until DOUBLE PRECISION,
    cancel_requested INTEGER NOT NULL DEFAULT 0
)
"""
_INDEX = "CREATE INDEX IF NOT EXISTS jobs_status_created ON jobs (status, created_at)"
#: The PostgreSQL advisory lock under which a process creates or alters the table.
_SCHEMA_LOCK = 0x6A6F6273  # 'jobs'
#: Columns added since the first schema: a table created before gets them at open.
_ADDED = {
    "lease_owner": "TEXT",
    "lease_until": "DOUBLE PRECISION",
    "cancel_requested": "INTEGER NOT NULL DEFAULT 0",
}


@dataclass(frozen=True, kw_only=True)
class JobRecord:
    """One job as stored.

    Attributes:
        job_id: The job's id.
        status: One of :data:`STATES`.
        video: Path of the video on the shared disk.
        owns_video: True when the video is the job's upload (deleted when the job ends);
            False for a ``video_path`` the client owns.
        max_frames: Frames to answer (evenly spaced), or None for every frame.
        created_at: Submission time, Unix seconds.
        started_at: Time the latest run started, or None.
        finished_at: Time the job ended, or None.
        attempts: Runs started (a run whose worker died counts; a graceful stop does not).
        error: Why the job failed, in words, or None.
        error_status: The HTTP status that fits the failure, or None.
        progress: The latest progress report of its worker, or None.

    """

    job_id: str
    status: str
    video: str
    owns_video: bool
    max_frames: int | None
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    error: str | None = None
    error_status: int | None = None
    progress: dict[str, Any] | None = None


@dataclass(frozen=True)
class Beat:
    """What a heartbeat learnt: whether a client asked to cancel the job."""

    cancel: bool


_COLUMNS = tuple(f.name for f in fields(JobRecord))
_SELECT = ", ".join(_COLUMNS)
_ENDED = f"status IN ('{COMPLETE}', '{ERROR}')"
_EXPIRED = f"status = '{PROCESSING}' AND (lease_until IS NULL OR lease_until < {{now}})"


class JobStore(ABC):
    """The job table and its queue operations (SQL shared; the dialect is the subclass's).

    The SQL is written with ``?`` placeholders and ``{now}`` for the database's clock in
    Unix seconds; ``{lock}`` follows the claim's row choice.
    """

    #: The database's clock, in Unix seconds.
    NOW: str
    #: After the claim's row choice: how concurrent claims skip each other's row.
    LOCK: str

    @abstractmethod
    def _run(self, sql: str, arguments: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement in its own transaction; the rows it returns."""

    @abstractmethod
    def _columns(self) -> set[str]:
        """The columns the jobs table has."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection."""

    def _sql(self, sql: str) -> str:
        return sql.format(now=self.NOW, lock=self.LOCK)

    def _create(self) -> None:
        self._run(_SCHEMA)
        missing = [name for name in _ADDED if name not in self._columns()]
        for name in missing:
            self._run(f"ALTER TABLE jobs ADD COLUMN {name} {_ADDED[name]}")
        self._run(_INDEX)

    # ------------------------------------------------------------------ enqueue and read

    def insert(self, record: JobRecord, *, queue_max: int | None = None) -> bool:
        """Add a job; with ``queue_max``, only while fewer jobs than that are queued.

        The bound is checked, then the job added: replicas submitting at the same instant
        may each add one beyond it.

        Returns:
            Whether the job was added.

        """
        if queue_max is not None and self.counts()[QUEUED] >= queue_max:
            return False
        values = tuple(_to_column(name, getattr(record, name)) for name in _COLUMNS)
        self._run(f"INSERT INTO jobs ({_SELECT}) VALUES ({', '.join('?' * len(_COLUMNS))})", values)
        return True

    def get(self, job_id: str) -> JobRecord | None:
        """The job, or None when unknown."""
        rows = self._select("WHERE job_id = ?", job_id)
        return rows[0] if rows else None

    def position(self, job_id: str) -> int | None:
        """1 for the next job to be claimed, or None when the job is not queued."""
        rows = self._run(
            f"SELECT COUNT(*) FROM jobs j, jobs me WHERE me.job_id = ? AND me.status = "
            f"'{QUEUED}' AND j.status = '{QUEUED}' AND (j.created_at < me.created_at OR "
            "(j.created_at = me.created_at AND j.job_id <= me.job_id))",
            (job_id,),
        )
        return int(rows[0][0]) or None

    def finished(self) -> list[JobRecord]:
        """Ended jobs (complete or error), the earliest ended first."""
        return self._select(f"WHERE {_ENDED} ORDER BY finished_at")

    def recent(self, limit: int) -> list[JobRecord]:
        """The ``limit`` latest submitted jobs, the latest first."""
        return self._select("ORDER BY created_at DESC LIMIT ?", limit)

    def counts(self) -> dict[str, int]:
        """Jobs per state (every state, 0 when none)."""
        rows = self._run("SELECT status, COUNT(*) FROM jobs GROUP BY status")
        return {state: 0 for state in STATES} | {status: int(n) for status, n in rows}

    def delete(self, job_id: str) -> None:
        """Forget a job."""
        self._run("DELETE FROM jobs WHERE job_id = ?", (job_id,))

    def update(self, job_id: str, **values: Any) -> None:
        """Change some fields of a job, unconditionally (an operator's repair, or a test's setup).

        Workers never use it: their writes are the lease-fenced ones below.
        """
        assignments = ", ".join(f"{name} = ?" for name in values)
        self._run(
            f"UPDATE jobs SET {assignments} WHERE job_id = ?",
            (*(_to_column(name, v) for name, v in values.items()), job_id),
        )

    # ------------------------------------------------------------------ the workers' side

    def expire(self, max_attempts: int, now: float) -> list[JobRecord]:
        """End in ``error`` the jobs whose lease ran out after ``max_attempts`` runs.

        Returns:
            The jobs ended (their uploads are the caller's to delete).

        """
        return self._returning(
            f"UPDATE jobs SET status = '{ERROR}', finished_at = ?, error_status = 500, "
            "error = 'its worker stopped answering in each of its ' || attempts || "
            "' runs (killed, or out of memory); not retried', lease_owner = NULL "
            f"WHERE {_EXPIRED} AND attempts >= ?",
            (now, max_attempts),
        )

    def claim(
        self,
        worker: str,
        lease_s: float,
        now: float,
        *,
        progress: dict[str, Any] | None = None,
    ) -> JobRecord | None:
        """Take the oldest queued job, or one whose worker's lease ran out, for ``worker``.

        Args:
            worker: The lease's owner.
            lease_s: The lease's length.
            now: The run's start time.
            progress: The progress to answer until the first heartbeat.

        Returns:
            The job, now ``processing`` under a lease of ``lease_s``, or None.

        """
        rows = self._returning(
            f"UPDATE jobs SET status = '{PROCESSING}', lease_owner = ?, "
            "lease_until = {now} + ?, attempts = attempts + 1, started_at = ?, "
            "progress = ?, cancel_requested = 0 WHERE job_id = (SELECT job_id FROM jobs "
            f"WHERE status = '{QUEUED}' OR ({_EXPIRED}) ORDER BY created_at, job_id LIMIT 1 "
            "{lock})",
            (worker, lease_s, now, _to_column("progress", progress)),
        )
        return rows[0] if rows else None

    def heartbeat(
        self, job_id: str, worker: str, lease_s: float, progress: dict[str, Any]
    ) -> Beat | None:
        """Renew the lease and store the progress.

        Returns:
            Whether a client asked to cancel, or None when the worker no longer holds the job.

        """
        rows = self._run(
            self._sql(
                "UPDATE jobs SET lease_until = {now} + ?, progress = ? WHERE job_id = ? "
                f"AND lease_owner = ? AND status = '{PROCESSING}' RETURNING cancel_requested"
            ),
            (lease_s, json.dumps(progress), job_id, worker),
        )
        return Beat(cancel=bool(rows[0][0])) if rows else None

    def end(
        self,
        job_id: str,
        worker: str,
        status: str,
        now: float,
        *,
        error: str | None = None,
        error_status: int | None = None,
        progress: dict[str, Any] | None = None,
    ) -> JobRecord | None:
        """End a job the worker holds (``complete`` or ``error``); None when it lost it."""
        rows = self._returning(
            "UPDATE jobs SET status = ?, finished_at = ?, error = ?, error_status = ?, "
            "progress = ?, lease_owner = NULL, lease_until = NULL "
            f"WHERE job_id = ? AND lease_owner = ? AND status = '{PROCESSING}'",
            (status, now, error, error_status, _to_column("progress", progress), job_id, worker),
        )
        return rows[0] if rows else None

    def release(self, job_id: str, worker: str) -> bool:
        """Queue a job the worker holds again (the worker stops); its run does not count."""
        return bool(
            self._run(
                f"UPDATE jobs SET status = '{QUEUED}', lease_owner = NULL, lease_until = NULL, "
                "progress = NULL, attempts = attempts - 1 WHERE job_id = ? AND lease_owner = ? "
                f"AND status = '{PROCESSING}' RETURNING job_id",
                (job_id, worker),
            )
        )

    def cancel(self, job_id: str, now: float) -> JobRecord | None:
        """End a queued job in ``error``, or ask a running job's worker to stop it.

        Returns:
            The record when the job was queued and is now ended, else None.

        """
        rows = self._returning(
            f"UPDATE jobs SET status = '{ERROR}', finished_at = ?, "
            "error = 'cancelled by a client before it started' "
            f"WHERE job_id = ? AND status = '{QUEUED}'",
            (now, job_id),
        )
        if rows:
            return rows[0]
        self._run(
            f"UPDATE jobs SET cancel_requested = 1 WHERE job_id = ? AND status = '{PROCESSING}'",
            (job_id,),
        )
        return None

    # ------------------------------------------------------------------ helpers

    def _select(self, where: str, *arguments: Any) -> list[JobRecord]:
        return _records(self._run(f"SELECT {_SELECT} FROM jobs {where}", arguments))

    def _returning(self, sql: str, arguments: tuple[Any, ...]) -> list[JobRecord]:
        return _records(self._run(self._sql(sql) + f" RETURNING {_SELECT}", arguments))


class SqliteJobStore(JobStore):
    """The embedded store: one SQLite file, one connection shared under a lock, WAL mode.

    Args:
        path: The SQLite file (its folder is created).

    """

    NOW = "((julianday('now') - 2440587.5) * 86400.0)"
    LOCK = ""  # one writer at a time: the claim statement is atomic

    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._run("PRAGMA journal_mode=WAL")
        self._create()

    def _run(self, sql: str, arguments: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, arguments).fetchall()

    def _columns(self) -> set[str]:
        return {row[1] for row in self._run("PRAGMA table_info(jobs)")}

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()


class PostgresJobStore(JobStore):
    """The shared store: PostgreSQL, one autocommit connection per process, reopened if lost.

    Args:
        url: ``postgresql://user:password@host:port/database``.
        connect_timeout_s: How long opening a connection may take.

    """

    NOW = "EXTRACT(EPOCH FROM clock_timestamp())::DOUBLE PRECISION"
    LOCK = "FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str, *, connect_timeout_s: float = 10.0) -> None:
        import psycopg  # only a shared deployment needs the driver

        self._psycopg = psycopg
        self._url = url
        self._timeout = max(1, round(connect_timeout_s))
        self._lock = threading.Lock()
        self._db: Any = None
        self._create()

    def _connect(self) -> Any:
        return self._psycopg.connect(self._url, autocommit=True, connect_timeout=self._timeout)

    def _run(self, sql: str, arguments: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        statement = sql.replace("?", "%s")
        with self._lock:
            for retry in (True, False):
                if self._db is None or self._db.closed:
                    self._db = self._connect()
                try:
                    with self._db.cursor() as cursor:
                        cursor.execute(statement, arguments)
                        return cursor.fetchall() if cursor.description else []
                except self._psycopg.OperationalError:
                    if not (retry and self._db.closed):  # only a lost connection is retried
                        raise
        raise AssertionError("unreachable")

    def _create(self) -> None:
        # CREATE TABLE IF NOT EXISTS races when replicas start at once (both see no table,
        # the second fails on the catalog's unique key): a lock held by the session
        # makes them take turns.
        self._run("SELECT pg_advisory_lock(?)", (_SCHEMA_LOCK,))
        try:
            super()._create()
        finally:
            self._run("SELECT pg_advisory_unlock(?)", (_SCHEMA_LOCK,))

    def _columns(self) -> set[str]:
        rows = self._run(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'jobs'"
        )
        return {row[0] for row in rows}

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._db is not None:
                self._db.close()


def open_store(location: str) -> JobStore:
    """The store a setting names: a ``postgresql://`` URL, else a SQLite file's path."""
    if location.startswith(("postgresql://", "postgres://")):
        return PostgresJobStore(location)
    return SqliteJobStore(location)


def _records(rows: list[tuple[Any, ...]]) -> list[JobRecord]:
    return [
        JobRecord(**{name: _from_column(name, v) for name, v in zip(_COLUMNS, row, strict=True)})
        for row in rows
    ]


def _to_column(name: str, value: Any) -> Any:
    if name == "progress" and value is not None:
        return json.dumps(value)
    if name == "owns_video":
        return int(value)
    return value


def _from_column(name: str, value: Any) -> Any:
    if name == "progress" and value is not None:
        return json.loads(value)
    if name == "owns_video":
        return bool(value)
    return value
