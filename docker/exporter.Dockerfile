# The exporter: PyTorch (CPU only), the ONNX tool chain, transformers and the export scripts.
# Run once on the user's machine, before the first start (compose profile `export`):
#   docker compose --profile export run --rm exporter
# It downloads the official HMR2 checkpoint (scripts/fetch_weights.py: mirrors, checks),
# takes the user's SMPL file from the mounted weights folder, exports hmr2, smpl and the
# production person detector (D-FINE, from Hugging Face) into the mounted model_repository/.
# Nothing is baked in: weights and models live in the two mounted folders.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    HF_HOME=/app/weights/huggingface \
    XDG_CACHE_HOME=/app/weights/.cache

# uid 1000, the first user of a WSL distribution; compose runs it as the host user anyway
# (HOST_UID/HOST_GID), so the files it writes in the mounted folders are the user's.
RUN groupadd --gid 1000 exporter \
    && useradd --uid 1000 --gid exporter --no-create-home --home-dir /app \
       --shell /usr/sbin/nologin exporter

WORKDIR /app

# Dependencies before code. requirements/export.txt includes service.txt and takes PyTorch's
# CPU wheels (no CUDA libraries, a tenth of the size) from PyTorch's index.
COPY requirements/service.txt requirements/export.txt requirements/
RUN pip install --no-cache-dir -r requirements/export.txt

COPY tracker_service/ tracker_service/
COPY tracker_tools/ tracker_tools/
COPY scripts/ scripts/

USER 1000:1000

ENTRYPOINT ["python", "-m", "scripts.fetch_weights"]
CMD []
