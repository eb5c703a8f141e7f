# `make run` and `make test` set up .venv themselves; see README.md.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# torch 2.13.0 is taken from local disk where it lies there (a CPU build); elsewhere pip fetches it.
TORCH_SPEC ?= torch==2.13.0
PARAMS ?= params/default.yaml
# pytest-xdist workers of make test, a core each (tests/parallel.py)
TEST_WORKERS ?= 2
QUIET_PIP := { grep -v "^WARNING: Location" || true; }

.PHONY: help setup serve-env run run-transformer test test-fast lint lab clean weights
help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# requirements.lock pins every package of .[dev,fleet,vision] but torch, with hashes (scripts/update_lock.sh); torch first,
# from TORCH_SPEC, then the lock without resolving anything, then the package itself; pip check proves it complete.
# uv installs the lock (5 s with an empty uv cache against pip's 35 s, 2-core machine, 2026-11-26); torch stays
# with pip, which finds the local file that uv does not look for. uv, like torch, is pinned by version, not hash.
# torchvision in the lock is built for torch 2.13.0: another TORCH_SPEC needs its own torchvision (pip check says so)
UV_SPEC ?= uv==0.13.9
UV := $(VENV)/bin/uv
UV_INSTALL := $(UV) pip install -q --native-tls --compile-bytecode
# .venv itself with pip and uv (all that serve-env needs of it)
$(UV):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | $(QUIET_PIP)
	$(PY) -m pip install -q "$(UV_SPEC)" 2>&1 | $(QUIET_PIP)

$(VENV)/.installed: pyproject.toml requirements.lock | $(UV)
	$(PY) -m pip install -q "$(TORCH_SPEC)" 2>&1 | $(QUIET_PIP)
	$(UV_INSTALL) --python $(PY) --require-hashes --no-deps -r requirements.lock
	$(PY) -m pip install -q --no-deps -e . 2>&1 | $(QUIET_PIP)
	# an editable install leaves out setup.py's start-up hook (torchvision beside a CPU torch): put it in place
	$(PY) -c "import shutil, sysconfig; shutil.copy('lib/scaleproof-torchvision.pth', sysconfig.get_paths()['purelib'])"
	$(PY) -m pip check
	$(PY) -c "import scaleproof, torch, torchvision, onnxruntime, papermill, mlperf_loadgen"
	touch $@

# a named kernel for JupyterLab users, in .venv (papermill and nbval run the notebooks on .venv's python3 kernel)
KERNEL := $(VENV)/share/jupyter/kernels/scaleproof/kernel.json
$(KERNEL): $(VENV)/.installed
	$(PY) -m ipykernel install --sys-prefix --name scaleproof --display-name "Python (scaleproof)" >/dev/null

setup: $(VENV)/.installed $(KERNEL)  ## create .venv with everything the run and the tests need, and the scaleproof kernel

# Triton on CPU for `scaleproof serve-bench`: nvidia-pytriton ships a tritonserver binary and pins numpy < 2,
# which .venv does not take, so it gets an environment of its own
SERVE_VENV := .venv-serve
SERVE_SPEC ?= nvidia-pytriton==0.7.0 onnxruntime==1.32.0
$(SERVE_VENV)/.installed: Makefile | $(UV)
	$(PYTHON) -m venv $(SERVE_VENV)
	$(UV_INSTALL) --python $(SERVE_VENV)/bin/python $(SERVE_SPEC)
	$(SERVE_VENV)/bin/python -c "import pytriton.triton, onnxruntime"
	touch $@

serve-env: $(SERVE_VENV)/.installed  ## create .venv-serve: a Triton server (nvidia-pytriton) and ONNX Runtime

run: setup  ## run the default profile (PARAMS=...) into outputs/<run_id>/
	$(VENV)/bin/scaleproof run --params $(PARAMS)

ENCODER_DATA := data/sentence-encoder
$(ENCODER_DATA)/weights.safetensors: | setup
	$(PY) -m scaleproof.examples.sentence_encoder $(ENCODER_DATA)

run-transformer: setup $(ENCODER_DATA)/weights.safetensors  ## a sentence encoder with its weights and .npz data (params/transformer.yaml)
	$(VENV)/bin/scaleproof run --params params/transformer.yaml

test: setup serve-env  ## tests/unit, tests/integration, tests/e2e (chains, Ray, Triton, browser) and nbval (GPU tests skip without CUDA)
	command -v chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium; } >/dev/null  # report test
	command -v promtool >/dev/null || { apt-get update -q && apt-get install -y -q prometheus; } >/dev/null  # serving-metrics tests: a Prometheus server and promtool
	$(VENV)/bin/ruff check lib tests scripts notebooks benchmarks
	rm -rf outputs/dev  # the notebooks' standalone run folder: nbval starts it fresh
	$(PY) -m scaleproof.hardware  # the CPU and its ISA level: INT8 numerics and speed depend on them
	# nbval runs each notebook on its own; SCALEPROOF_PARAMS gives them tests/nbval.yaml (smoke, one search).
	# 08_deploy needs a published run: tests/e2e/test_deploy.py executes it with papermill on one instead.
	# Two pytest-xdist workers, a core each: the suite waits on LoadGen runs, kernels and Ray more than it computes.
	# Tests that share a run, a module fixture or a notebook share a worker (tests/parallel.py); a crashed worker
	# fails its test, not restarted (xdist 3.8's restart hangs loadgroup: pytest-dev/pytest-xdist#1327)
	SCALEPROOF_PARAMS=$(CURDIR)/tests/nbval.yaml $(PY) -m pytest -q --durations=15 --nbval-lax \
		-n $(TEST_WORKERS) --dist loadgroup --max-worker-restart=0 tests notebooks --ignore=notebooks/08_deploy.ipynb

test-fast: setup  ## tests/unit: no kernel, LoadGen, Ray or spawned process (each test refuses them); under a minute
	$(PY) -m pytest -q --durations=5 tests/unit

lint: setup  ## ruff over lib, tests, scripts and notebooks
	$(VENV)/bin/ruff check lib tests scripts notebooks benchmarks

PORT ?= 8888
LAB_IP ?= 127.0.0.1
lab: setup  ## JupyterLab on notebooks/ with the scaleproof kernel (PORT=8888, LAB_IP=0.0.0.0 in a container; no browser)
	$(PY) -m pip install -q -e '.[lab]' 2>&1 | $(QUIET_PIP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --no-browser --port=$(PORT) --ip=$(LAB_IP) \
		$(if $(filter 0,$(shell id -u)),--allow-root,)

weights: setup  ## re-create data/weights/digits-{cnn,mobile}.safetensors and their sha256
	$(PY) scripts/train_digits.py --model digits-cnn
	$(PY) scripts/train_digits.py --model digits-mobile

clean:  ## remove .venv, .venv-serve and outputs/
	rm -rf $(VENV) $(SERVE_VENV) outputs
