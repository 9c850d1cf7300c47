"""Whole-video jobs: one engine (:mod:`.engine`) behind the endpoints of ``VIDEO_API.md``.

:mod:`.media` sniffs, probes, decodes and encodes videos; :mod:`.store` keeps the job
records in SQLite; :mod:`.result` builds and writes a job's result.
"""
