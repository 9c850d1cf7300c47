"""HTTP endpoints: the legacy ``POST /pose/hybrid`` and ``GET /health``, and ``GET /metrics``."""
