"""HTTP endpoints: the legacy pose, health and admin routes, and ``GET /metrics``."""
