#!/usr/bin/env bash
# Every GPU figure in one command, from a fresh clone of this repository on a GPU machine
# (Python 3.11, pip, gcc, the NVIDIA driver; the package registries reachable):
#
#   scripts/gpu_check.sh            # ≤ 10 minutes in all: docs/gpu.md, docs/gpu.json, a summary
#   scripts/gpu_check.sh --dry-run  # what it would install, resolved against PyPI; no venv needed
#   scripts/gpu_check.sh --cpu      # the same steps on the CPU with the tiny model set
#
# `make gpu-check` builds what the check needs (virtual environments, stand-in body model,
# detector; three jobs at once), then python -m scripts.gpu_check runs the steps of
# tracker_tools/gpu_check.py, each with its own budget, within 10 minutes from this script's
# start. Any other arguments go to python -m scripts.gpu_check.
set -euo pipefail
cd "$(dirname "$0")/.."
for arg in "$@"; do
    if [[ $arg == --dry-run ]]; then
        exec "${PYTHON:-python3}" -m scripts.gpu_check "$@"
    fi
done
started=$(date +%s.%N)
exec make -j3 gpu-check GPU_CHECK="--started-at $started $*"
