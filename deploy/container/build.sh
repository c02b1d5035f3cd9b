#!/usr/bin/env bash
# Builds the serving image from the repository's working tree (make container).
#
#   deploy/container/build.sh [IMAGE]     # default localhost/ganserve:gpu, or :cpu with ORT=onnxruntime
#
# Environment:
#   BASE              the base image (default: the Dockerfile's CUDA base); `make container-base`
#                     makes a Debian one locally for hosts that reach no registry
#   ORT               onnxruntime-gpu (default) or onnxruntime (CPU only, a much smaller image)
#   CONTAINER_ENGINE  podman (default) or docker
# With podman: deploy/container/containers.conf (runc, ulimits) unless CONTAINERS_CONF is set,
# --format docker (keeps the HEALTHCHECK), and the host's CA bundle and pip configuration
# mounted read-only into the build, so that pip inside it goes where the host's pip goes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
ENGINE="${CONTAINER_ENGINE:-podman}"
ORT="${ORT:-onnxruntime-gpu}"
case "$ORT" in
onnxruntime-gpu) variant=gpu ;;
onnxruntime) variant=cpu ;;
*) echo "error: ORT must be onnxruntime-gpu or onnxruntime, not $ORT" >&2; exit 2 ;;
esac
IMAGE="${1:-localhost/ganserve:$variant}"

args=(build --tag "$IMAGE" --build-arg "ORT=$ORT")
if [[ -n "${BASE:-}" ]]; then
    args+=(--build-arg "BASE=$BASE")
fi
if [[ "$ENGINE" == podman ]]; then
    export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"
    args+=(--format docker)
    for f in /etc/ssl/certs/ca-certificates.crt /etc/pip.conf; do
        if [[ -f "$f" ]]; then
            args+=(--volume "$f:$f:ro")
        fi
    done
fi
previous="$("$ENGINE" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
start=$SECONDS
"$ENGINE" "${args[@]}" "$root"
current="$("$ENGINE" image inspect --format '{{.Id}}' "$IMAGE")"
if [[ -n "$previous" && "$previous" != "$current" ]]; then
    # The image this tag named before, now untagged: removed unless a container still uses it.
    "$ENGINE" rmi "$previous" >/dev/null 2>&1 || true
fi
size="$("$ENGINE" image inspect --format '{{.Size}}' "$IMAGE")"
echo "built $IMAGE ($((size / 1000000)) MB) in $((SECONDS - start)) s"
