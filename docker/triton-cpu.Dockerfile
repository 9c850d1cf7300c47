# Triton for a machine without an NVIDIA GPU or access to NGC (compose.pytriton.yaml): the real
# tritonserver 2.51.0 that the PyPI wheel nvidia-pytriton 0.7.0 bundles (the server version of
# NGC's 24.10 image, docker/triton.Dockerfile), with its only backend, Python. At start it
# derives the Python-backend repository from the mounted production one (/models, read-only):
# `python -m scripts.model_repository local` writes the same names, shapes, batching and warmup,
# and tracker_tools/triton_python_runner.py runs each model.onnx with ONNX Runtime on the CPU,
# exactly as the local server of the tests does (tracker_tools/triton_server.py).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN groupadd --system --gid 10002 triton \
    && useradd --system --uid 10002 --gid triton --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin triton

WORKDIR /app

# The server, numpy<2 (the Python backend exchanges tensors correctly only with numpy 1) and
# ONNX Runtime. The Python backend runs its stub, built per Python version, from its folder:
# the one for this image's Python goes there; `tritonserver` goes on PATH.
COPY requirements/triton.txt requirements/triton.txt
RUN pip install --no-cache-dir -r requirements/triton.txt \
    && server=$(python -c "import pathlib, pytriton; print(pathlib.Path(pytriton.__file__).parent / 'tritonserver')") \
    && version=$(python -c "import sys; print('%d.%d' % sys.version_info[:2])") \
    && cp "$server/python_backend_stubs/$version/triton_python_backend_stub" "$server/backends/python/" \
    && ln -s "$server/bin/tritonserver" /usr/local/bin/tritonserver \
    && ln -s "$server/backends" /opt/tritonserver-backends

# What derives the local repository: the spec, the config derivation and the runner.
COPY tracker_service/__init__.py tracker_service/model_spec.py tracker_service/
COPY tracker_tools/__init__.py tracker_tools/model_repository.py tracker_tools/triton_python_runner.py tracker_tools/
COPY scripts/__init__.py scripts/model_repository.py scripts/

USER 10002:10002

# 8000 HTTP, 8001 gRPC (the tracker's), 8002 Prometheus metrics.
EXPOSE 8000 8001 8002

# Ready = the server and every loaded model are ready. Python's urllib: no curl in the image.
HEALTHCHECK --interval=5s --timeout=5s --start-period=10m --retries=4 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/v2/health/ready', timeout=4)"]

# The repository is derived into /tmp (the mounted one stays read-only); then the server runs
# as PID 1, so that SIGTERM reaches it: requests in flight get 30 s (--exit-timeout-secs).
CMD ["sh", "-c", "python -m scripts.model_repository local --production-root /models --out /tmp/repository && exec tritonserver --model-repository=/tmp/repository --backend-directory=/opt/tritonserver-backends --model-control-mode=explicit --load-model=person_detector --load-model=hmr2 --load-model=smpl --strict-readiness=true --http-port=8000 --grpc-port=8001 --allow-metrics=true --metrics-port=8002 --allow-gpu-metrics=false --pinned-memory-pool-byte-size=0 --exit-timeout-secs=30 --log-verbose=0"]
