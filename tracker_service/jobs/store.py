"""Job records in SQLite: one row per job, so that a restart keeps every job answerable.

Only the small record lives here (state, times, error, progress); results and overlay
videos are files in the job's folder. One connection, shared by the threads under a lock
(each statement takes microseconds), in WAL mode so that a reader never waits on a writer.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

#: The job states, exactly as ``VIDEO_API.md`` spells them.
QUEUED, PROCESSING, COMPLETE, ERROR = "queued", "processing", "complete", "error"
STATES = (QUEUED, PROCESSING, COMPLETE, ERROR)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    video TEXT NOT NULL,
    owns_video INTEGER NOT NULL,
    max_frames INTEGER,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    error_status INTEGER,
    progress TEXT
)
"""


@dataclass(frozen=True, kw_only=True)
class JobRecord:
    """One job as stored.

    Attributes:
        job_id: The job's id.
        status: One of :data:`STATES`.
        video: Path of the video on the service's disk.
        owns_video: True when the video is the job's upload (deleted when the job ends);
            False for a ``video_path`` the client owns.
        max_frames: Frames to answer (evenly spaced), or None for every frame.
        created_at: Submission time, Unix seconds.
        started_at: Time the latest run started, or None.
        finished_at: Time the job ended, or None.
        attempts: Runs started (a run cut off by a restart counts).
        error: Why the job failed, in words, or None.
        error_status: The HTTP status that fits the failure, or None.
        progress: The latest progress report (see ``JobEngine``), or None.

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


_COLUMNS = tuple(f.name for f in fields(JobRecord))
_PLACEHOLDERS = ", ".join("?" * len(_COLUMNS))


class JobStore:
    """The job table.

    Args:
        path: The SQLite file (its folder is created).

    """

    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def insert(self, record: JobRecord) -> None:
        """Add a job."""
        values = [_to_column(name, getattr(record, name)) for name in _COLUMNS]
        with self._lock:
            self._db.execute(
                f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({_PLACEHOLDERS})", values
            )

    def update(self, job_id: str, **values: Any) -> None:
        """Change some fields of a job (field names of :class:`JobRecord`)."""
        names = list(values)
        assignments = ", ".join(f"{name} = ?" for name in names)
        with self._lock:
            self._db.execute(
                f"UPDATE jobs SET {assignments} WHERE job_id = ?",
                [*(_to_column(name, values[name]) for name in names), job_id],
            )

    def get(self, job_id: str) -> JobRecord | None:
        """The job, or None when unknown."""
        rows = self._select("WHERE job_id = ?", job_id)
        return rows[0] if rows else None

    def with_status(self, status: str) -> list[JobRecord]:
        """Jobs in one state, oldest first."""
        return self._select("WHERE status = ? ORDER BY created_at", status)

    def finished(self) -> list[JobRecord]:
        """Ended jobs (complete or error), the earliest ended first."""
        return self._select("WHERE status IN (?, ?) ORDER BY finished_at", COMPLETE, ERROR)

    def recent(self, limit: int) -> list[JobRecord]:
        """The ``limit`` latest submitted jobs, the latest first."""
        return self._select("ORDER BY created_at DESC LIMIT ?", limit)

    def counts(self) -> dict[str, int]:
        """Jobs per state (every state, 0 when none)."""
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        return {state: 0 for state in STATES} | dict(rows)

    def delete(self, job_id: str) -> None:
        """Forget a job."""
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))

    def _select(self, where: str, *arguments: Any) -> list[JobRecord]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM jobs {where}", arguments
            ).fetchall()
        return [
            JobRecord(
                **{name: _from_column(name, v) for name, v in zip(_COLUMNS, row, strict=True)}
            )
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
