# The serving image: the serve extra only (no torch), the shipped models, a non-root user.
#   make container                      # podman or docker; BASE=..., ORT=..., see deploy/container/build.sh
#   docker build -t ganserve .
#   docker run --gpus all -p 8000:8000 ganserve
# BASE: any image with apt or with python3 + venv already (deploy/container/base-image.sh makes
# a Debian one locally). The default: onnxruntime-gpu 1.31 from PyPI is built against CUDA 13
# and cuDNN 9, which this base provides.
# ORT: onnxruntime-gpu (CUDA, falls back to the CPU) or onnxruntime (CPU only, a much smaller
# image); exactly one of them is installed.
ARG BASE=nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04
FROM ${BASE} AS python

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# Python and venv from the base when it has them, else from apt.
RUN python3 -m venv /opt/venv 2>/dev/null || { \
        rm -rf /opt/venv \
        && apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/* \
        && python3 -m venv /opt/venv; }

# The user the service runs as: numeric, so that Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 ganserve \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent ganserve

WORKDIR /app

# What to install, read from pyproject.toml: the core dependencies and the serve extra, with
# the serve extra's onnxruntime-gpu replaced by $ORT. A stage of its own, so that the install
# below is redone only when this list changes, not on every edit of pyproject.toml.
FROM python AS requirements
COPY pyproject.toml ./
ARG ORT=onnxruntime-gpu
RUN python -c "import sys, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
reqs = p['dependencies'] + p['optional-dependencies']['serve']; \
print('\n'.join(sys.argv[1] + r[len('onnxruntime-gpu'):] if r.startswith('onnxruntime-gpu') else r \
for r in reqs))" "$ORT" > /requirements.txt \
    && grep -q "^$ORT" /requirements.txt

FROM python
COPY --from=requirements /requirements.txt /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt \
    && pip uninstall -q -y pip setuptools

# The code the service runs (ganserve/ and service/ only: .dockerignore keeps the rest out),
# compiled once so that a read-only root filesystem costs nothing at startup.
COPY ganserve/ ganserve/
COPY service/ service/
RUN python -m compileall -q ganserve service
ENV PYTHONPATH=/app

# The shipped generators, checked (sha256) and loaded at startup.
COPY models/ models/

USER 10001:10001

ENV GANSERVE_MODELS_DIR=/app/models \
    GANSERVE_HOST=0.0.0.0 \
    GANSERVE_PORT=8000
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['GANSERVE_PORT'], timeout=4)"]

# uvicorn with the service.app:create_app factory; settings from the GANSERVE_* variables above.
# SIGTERM (docker/podman stop, Kubernetes): stop accepting, finish the requests in flight, exit.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "service"]
