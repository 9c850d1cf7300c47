# The tracker service (tracker_service/): numpy, OpenCV (headless), SciPy, tritonclient, Flask,
# waitress. No PyTorch, no CUDA: every model runs on Triton, so the image stays small and
# starts in seconds. Build context: the repository root (compose.yaml does this).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# An unprivileged user that owns nothing in the image.
RUN groupadd --system --gid 10001 tracker \
    && useradd --system --uid 10001 --gid tracker --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin tracker

WORKDIR /app

# Dependencies before code: this layer is rebuilt only when the pins change. The wheels
# (OpenCV headless, grpcio, numpy, SciPy) bundle their native libraries: no apt packages.
COPY requirements/service.txt requirements/service.txt
RUN pip install --no-cache-dir -r requirements/service.txt

COPY tracker_service/ tracker_service/
# The jobs' data folder (the tracker_data volume): the service's user writes it.
RUN mkdir -p /app/data && chown 10001:10001 /app/data

USER 10001:10001

# The legacy endpoints (TRACKER_PORT, 5000 by default).
EXPOSE 5000

# Healthy = /health answers `ready` (Triton and every model are ready). Python's urllib:
# no curl in the image. The port follows TRACKER_PORT like the server does.
HEALTHCHECK --interval=15s --timeout=6s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import json, os, sys, urllib.request as u; port = os.environ.get('TRACKER_PORT', '5000'); body = json.load(u.urlopen(f'http://127.0.0.1:{port}/health', timeout=5)); sys.exit(0 if body.get('ready') is True else 1)"]

CMD ["python", "-m", "tracker_service"]
