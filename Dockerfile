# The serving image: ONNX Runtime on CUDA (falls back to the CPU without a GPU), no torch.
#   docker build -t ganserve .
#   docker run --gpus all -p 8000:8000 ganserve
# onnxruntime-gpu 1.31 from PyPI is built against CUDA 13 and cuDNN 9, which this base provides.
FROM nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv

WORKDIR /app

# Dependencies first (the serve extra only: fastapi, uvicorn, onnxruntime-gpu, ...), then code.
COPY pyproject.toml README.md ./
COPY ganserve/ ganserve/
COPY service/ service/
RUN pip install ".[serve]"

# The shipped generators, checked (sha256) and loaded at startup.
COPY models/ models/

RUN useradd --system --uid 10001 --no-create-home ganserve
USER ganserve

ENV GANSERVE_MODELS_DIR=/app/models \
    GANSERVE_HOST=0.0.0.0 \
    GANSERVE_PORT=8000
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['GANSERVE_PORT'], timeout=4)"]

# uvicorn with the service.app:create_app factory; settings from the GANSERVE_* variables above.
CMD ["python", "-m", "service"]
