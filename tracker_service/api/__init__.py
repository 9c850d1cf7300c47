"""HTTP endpoints: the legacy pose, health, admin and whole-video job routes, and metrics.

The job routes (``video.py``) submit videos, answer their status and serve their frames
and overlay; ``GET /metrics`` is Prometheus's.
"""
