# The README's commands. Each target sets up what it needs in .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
# The torch build to install (this is the CUDA build that also runs on CPU).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
HOST ?= 127.0.0.1
PORT ?= 8000
ARGS ?=

.PHONY: serve test train lint bench openapi clean-venv container container-base

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Everything: every stage, the SDK and the dev tools.
$(VENV)/.all: $(BIN)/python pyproject.toml clients/pyproject.toml
	$(PIP) install -q $(TORCH_SPEC)
	$(PIP) install -q -e '.[train,serve,export,eval,dev]' -e clients
	touch $@

# Only what serving needs: no torch.
$(VENV)/.serve: $(BIN)/python pyproject.toml
	$(PIP) install -q -e '.[serve]'
	touch $@

serve: $(VENV)/.serve
	$(BIN)/python -m service --host $(HOST) --port $(PORT) $(ARGS)

test: $(VENV)/.all
	$(BIN)/python -m pytest $(ARGS)

train: $(VENV)/.all
	$(BIN)/python -m training.train $(ARGS)

lint: $(VENV)/.all
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(VENV)/.all
	$(BIN)/python -m bench $(ARGS)

openapi: $(VENV)/.all
	$(BIN)/python -m service.openapi --write openapi.yaml

clean-venv:
	rm -rf $(VENV)

# The serving image (podman, or CONTAINER_ENGINE=docker): BASE=image (default: the Dockerfile's
# CUDA base), ORT=onnxruntime for the CPU-only image. container-base makes a Debian base locally
# (debootstrap from apt's mirror): make container-base container BASE=localhost/ganserve-base:bookworm
container:
	BASE='$(BASE)' ORT='$(ORT)' deploy/container/build.sh $(IMAGE)

container-base:
	deploy/container/base-image.sh
