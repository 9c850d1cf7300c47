"""HTTP endpoints, one blueprint a module.

Each handler reaches the resources it needs through :mod:`tracker_service.resources`'
accessors, never ``app.extensions``.

- ``pose.py``: ``POST /pose/hybrid``, the legacy frame endpoint (``LEGACY_API.md``).
- ``video.py``: whole-video jobs (``VIDEO_API.md``): ``POST /process_video_async``,
  ``POST /process_video``, ``GET /job_status/<id>``, ``GET /frame/<id>/<n>``,
  ``GET /output/<id>``, ``GET /result/<id>``, ``GET /job/<id>/frames``, ``DELETE /job/<id>``,
  ``POST /pose/video`` and ``GET /pose/video/status/<id>``.
- ``health.py``: ``GET /health``; ``admin.py``: ``GET``/``POST /warmup`` and ``POST /reload``.
- ``metrics.py``: ``GET /metrics`` (Prometheus) and the per-request counters.
- ``ui.py``: the viewer at ``/``, its static files, ``GET /jobs`` and ``GET /live``.
- ``errors.py``: every error answered as ``{"error": "..."}`` with its status code.
"""
