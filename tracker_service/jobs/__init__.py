"""Whole-video jobs: one engine (:mod:`.engine`) behind the endpoints of ``VIDEO_API.md``.

:mod:`.store` is the job queue (SQLite on one machine, PostgreSQL shared by replicas and
workers, with leases); :mod:`.worker` claims and runs jobs (:mod:`.run` runs one video);
:mod:`.artifacts` is the shared folder of their files; :mod:`.video_io` sniffs, probes, decodes
and encodes videos; :mod:`.result` builds and writes a job's result.
"""
