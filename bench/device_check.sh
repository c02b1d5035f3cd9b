#!/usr/bin/env bash
# The benchmark's GPU measurements in one script, under 8 minutes on one NVIDIA GPU:
#
#   bench/device_check.sh [RESULTS_DIR]      # default bench/results/device
#   python -m bench.device report RESULTS_DIR  # then, anywhere: the docs/benchmarks.md section
#
# 1. Installs what it needs from the project's own files (pyproject.toml's serve extra,
#    onnxruntime-gpu among them, plus httpx and onnx) into bench/.venvs/device-site, from
#    ./.whl when that folder holds wheels (python -m bench.device wheels fills it, for a GPU
#    machine that reaches no package registry), else from pip's index. PyTorch is the
#    machine's own (its python3 with CUDA).
# 2. ort: the CUDA provider is the one in use (not a silent CPU fallback), then ORT CUDA
#    (fp32 and fp16, IO binding) vs CPU images/s at batch 1..4096.
# 3. http: ganserve on CUDA, 32 concurrent 64-image and 1-image requests, against the
#    in-process limit on CUDA.
# 4. train: our training loop vs the reports' loop on CUDA (bench.train_bench).
# Each step (the install too) has its own time bound; a failed one leaves
# RESULTS_DIR/<step>.error and the next still runs. Without an NVIDIA GPU it says so in one line and exits 0.
set -uo pipefail
cd "$(dirname "$0")/.."

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    echo "device_check: no NVIDIA GPU on this machine (nvidia-smi lists none); nothing measured"
    exit 0
fi

OUT=${1:-bench/results/device}
PY=${PYTHON:-python3}
SITE=bench/.venvs/device-site
START=$(date +%s)
mkdir -p "$OUT" "$SITE"
echo "device_check: $(nvidia-smi -L | head -1); results in $OUT"

"$PY" -m bench.device requirements > "$OUT/requirements.txt" || exit 1
if compgen -G ".whl/*.whl" >/dev/null; then
    FROM=(--no-index --find-links .whl)
else
    FROM=()
fi
if ! timeout 300 "$PY" -m pip install -q --no-compile --upgrade --target "$SITE" "${FROM[@]}" \
        -r "$OUT/requirements.txt" > "$OUT/install.log" 2>&1; then
    # the steps still run: each fails on what is missing and says so; train needs no install
    tail -20 "$OUT/install.log" > "$OUT/install.error"
    echo "device_check: installing the requirements failed: $(tail -1 "$OUT/install.error")"
fi
export PYTHONPATH="$PWD/$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

step() {  # step NAME SECONDS ARGS...: one measurement, bounded in time
    local name=$1 limit=$2
    shift 2
    echo "device_check: $name (at most ${limit} s)"
    if ! timeout "$limit" "$PY" -m bench.device "$name" "$@" > "$OUT/$name.log" 2>&1; then
        tail -20 "$OUT/$name.log" > "$OUT/$name.error"
        echo "device_check: $name failed: $(tail -1 "$OUT/$name.error")"
    fi
}
step ort 100 --out "$OUT/ort.json"
step http 180 --out "$OUT/http.json"
step train 100 --out "$OUT/train.md"
"$PY" -m bench.device meta --out "$OUT/meta.json" --seconds $(($(date +%s) - START))
"$PY" -m bench.device report "$OUT" --no-write | tail -40
echo "device_check: done in $(($(date +%s) - START)) s"
