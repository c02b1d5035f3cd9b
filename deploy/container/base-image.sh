#!/usr/bin/env bash
# Makes a Debian base image locally, for hosts that reach no container registry:
# debootstrap (minbase + python3, python3-venv, ca-certificates) from the Debian
# mirror apt is configured with, then `podman import`.
#
#   deploy/container/base-image.sh [IMAGE]      # default localhost/ganserve-base:bookworm
#
# The root filesystem tarball is kept in $GANSERVE_CACHE_DIR (default
# ~/.cache/ganserve/container), keyed by suite, mirror and package list, so a
# second run, or a run after `podman rmi`, only imports it. Needs root (debootstrap).
# Environment: SUITE (bookworm), MIRROR (default: read from apt's sources),
# CONTAINER_ENGINE (podman).
# Exit status: 0 done; 2 this host cannot (no debootstrap, not root, no mirror);
# 3 debootstrap failed (its log's tail on stderr, e.g. the mirror is unreachable); else failed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
SUITE="${SUITE:-bookworm}"
IMAGE="${1:-localhost/ganserve-base:$SUITE}"
ENGINE="${CONTAINER_ENGINE:-podman}"
INCLUDE="python3,python3-venv,ca-certificates"
CACHE="${GANSERVE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ganserve/container}"
if [[ "$ENGINE" == podman && -z "${CONTAINERS_CONF:-}" ]]; then
    export CONTAINERS_CONF="$here/containers.conf"
fi

# The first Debian archive URI apt uses for the suite (deb822 .sources or one-line .list).
apt_mirror() {
    local files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
    local f uri
    for f in "${files[@]}"; do
        [[ -r "$f" ]] || continue
        case "$f" in
        *.sources)
            # Stanzas separated by blank lines: a deb stanza whose Suites include the suite.
            uri="$(awk -v suite="$SUITE" '
                function flush() { if (deb && has && uri != "") { print uri; found = 1; exit } deb = has = 0; uri = "" }
                /^[[:space:]]*$/ { flush(); next }
                /^[[:space:]]*#/ { next }
                tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
                tolower($1) == "uris:" { uri = $2 }
                tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) has = 1 }
                END { if (!found) flush() }' "$f")"
            ;;
        *)
            # deb [options] URI suite components...
            uri="$(awk -v suite="$SUITE" '
                $1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                              if ($(i + 1) == suite) { print $i; exit } }' "$f")"
            ;;
        esac
        if [[ -n "$uri" ]]; then
            echo "$uri"
            return
        fi
    done
}

if "$ENGINE" image exists "$IMAGE" 2>/dev/null; then
    echo "$IMAGE already exists"
    exit 0
fi
MIRROR="${MIRROR:-$(apt_mirror)}"
if [[ -z "$MIRROR" ]]; then
    echo "error: no Debian mirror for $SUITE in apt's sources; set MIRROR" >&2
    exit 2
fi
key="$(printf '%s\n' "$SUITE" "$MIRROR" "$INCLUDE" "$(uname -m)" | sha256sum | cut -c1-16)"
tarball="$CACHE/rootfs-$SUITE-$key.tar"
if [[ ! -s "$tarball" ]]; then
    command -v debootstrap >/dev/null || { echo "error: debootstrap is not installed" >&2; exit 2; }
    [[ "$(id -u)" == 0 ]] || { echo "error: debootstrap needs root" >&2; exit 2; }
    mkdir -p "$CACHE"
    rootfs="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
    trap 'rm -rf "$rootfs" "$tarball.tmp"' EXIT
    echo "debootstrap $SUITE from $MIRROR (minbase + $INCLUDE)"
    debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$rootfs" "$MIRROR" \
        >"$CACHE/debootstrap.log" 2>&1 || { tail -n 20 "$CACHE/debootstrap.log" >&2; exit 3; }
    # What an image needs none of: package lists and archives, docs, logs.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/var/log/*
    tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
fi
"$ENGINE" import --quiet \
    --change 'CMD ["/bin/bash"]' \
    --change "LABEL org.opencontainers.image.description=Debian $SUITE minbase with python3" \
    "$tarball" "$IMAGE" >/dev/null
echo "$IMAGE imported from $tarball"
