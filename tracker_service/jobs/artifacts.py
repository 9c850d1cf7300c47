"""The jobs' files: one folder per job (upload, result, overlay) under one shared folder.

Every API replica and worker mounts the same folder (a shared volume), so that a result
written by a worker is served by any replica (``/job_status``, ``/frame``, ``/output``) and
``output_path`` names the same file everywhere. Ended jobs are deleted by age and by disk
budget (:meth:`Artifacts.sweep`, run by idle workers; concurrent sweeps are harmless).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from tracker_service.jobs.result import summary_path
from tracker_service.jobs.store import JobStore

log = logging.getLogger(__name__)

#: File names in a job's folder.
RESULT, OVERLAY, UPLOAD = "result.json", "overlay.mp4", "upload"


class Artifacts:
    """The shared folder of the jobs' files.

    Args:
        folder: The folder (created; made absolute, as ``output_path`` answers it).

    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).resolve()
        self.folder.mkdir(parents=True, exist_ok=True)

    def of(self, job_id: str) -> Path:
        """The job's own folder."""
        return self.folder / job_id

    def upload(self, job_id: str) -> Path:
        """Where the job's uploaded video is saved."""
        return self.of(job_id) / UPLOAD

    def result(self, job_id: str, *, frames: bool = True) -> Path:
        """The result file of a job, or (``frames=False``) its summary keys alone."""
        path = self.of(job_id) / RESULT
        return path if frames else summary_path(path)

    def overlay(self, job_id: str) -> Path:
        """The overlay video of a job."""
        return self.of(job_id) / OVERLAY

    def remove(self, job_id: str) -> None:
        """Delete a job's folder."""
        shutil.rmtree(self.of(job_id), ignore_errors=True)

    def sweep(self, store: JobStore, *, retention_s: float, budget_bytes: int) -> None:
        """Delete ended jobs older than ``retention_s``, then the oldest over the budget."""
        finished = store.finished()
        cutoff = time.time() - retention_s
        sizes = {record.job_id: _folder_bytes(self.of(record.job_id)) for record in finished}
        used = sum(_folder_bytes(folder) for folder in self.folder.iterdir())
        for record in finished:
            old = (record.finished_at or 0.0) < cutoff
            if not old and used <= budget_bytes:
                break
            log.info("Job %s: deleted (%s)", record.job_id, "retention" if old else "disk budget")
            self.remove(record.job_id)
            store.delete(record.job_id)
            used -= sizes[record.job_id]


def _folder_bytes(folder: Path) -> int:
    """The bytes under ``folder``; what a request, run or other sweep removes meanwhile counts 0."""
    total = 0
    for root, _dirs, files in os.walk(folder):  # os.walk skips a folder removed meanwhile
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                pass
    return total
