#!/usr/bin/env bash
# Build the container image localhost/faceup:latest from the Dockerfile, with
# Debian's own tools and no registry needed.
#
#   tools/image.sh tools   install podman, buildah and mmdebstrap (root + apt)
#   tools/image.sh base    the base image: BASE if given, else the slim Python
#                          image if a registry answers, else a Debian bookworm
#                          base built with mmdebstrap (localhost/faceup-base)
#   tools/image.sh build   base, then the image (buildah, chroot isolation)
#   tools/image.sh size    the image's size and where its bytes go
#
# Environment: IMAGE (localhost/faceup:latest), BASE (an image to build on),
# EXTRAS (heic: pip extras of the image), PIP_CERT / PIP_INDEX_URL (passed to
# pip inside the build when set: a package index behind a proxy with its own CA).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/faceup:latest}
LOCAL_BASE=localhost/faceup-base:bookworm
REGISTRY_BASE=docker.io/library/python:3.11-slim
EXTRAS=${EXTRAS-heic}

say() { echo "image: $*" >&2; }

tools() {
  local missing=()
  for t in podman buildah mmdebstrap; do command -v "$t" >/dev/null || missing+=("$t"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing ${missing[*]} from Debian"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman buildah mmdebstrap >/dev/null
  else
    say "needs podman, buildah and mmdebstrap (as root: apt-get install podman buildah mmdebstrap)"
    return 1
  fi
}

# A Debian bookworm base with Python 3.11 and nothing a service does not use:
# the essential packages, python3, its venv module (the builder's pip) and the
# CA bundle; merged /usr without the usrmerge package (which pulls in perl);
# no documentation, manuals or translations (copyright files are kept).
debian_base() {
  local tmp
  tmp=$(mktemp -d)
  say "building $LOCAL_BASE with mmdebstrap (Debian bookworm, Python 3.11)"
  mmdebstrap --quiet --variant=essential --include=python3,python3-venv,ca-certificates,libstdc++6 \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
    bookworm "$tmp/base.tar" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; say "mmdebstrap failed"; return 1; }
  podman import --quiet "$tmp/base.tar" "$LOCAL_BASE" >/dev/null
  podman image exists "$LOCAL_BASE"
  rm -rf "$tmp"
}

base() {
  if [ -n "${BASE:-}" ]; then echo "$BASE"; return; fi
  if podman image exists "$LOCAL_BASE"; then echo "$LOCAL_BASE"; return; fi
  if podman image exists "$REGISTRY_BASE" || timeout 120 podman pull --quiet "$REGISTRY_BASE" >/dev/null 2>&1; then
    echo "$REGISTRY_BASE"; return
  fi
  say "no registry answers: the base is made here"
  debian_base
  echo "$LOCAL_BASE"
}

build() {
  tools
  local from args=()
  from=$(base)
  [ -n "${PIP_CERT:-}" ] && [ -f "$PIP_CERT" ] && args+=(-v "$PIP_CERT:$PIP_CERT:ro" --build-arg "PIP_CERT=$PIP_CERT")
  [ -n "${PIP_INDEX_URL:-}" ] && args+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL")
  say "building $IMAGE on $from"
  # docker format: it keeps the HEALTHCHECK (the OCI format has none)
  buildah bud --quiet --format docker --isolation chroot --network host --layers=false "${args[@]}" \
    --build-arg "BASE=$from" --build-arg "EXTRAS=$EXTRAS" -t "$IMAGE" . >/dev/null
  size
}

size() {
  podman image inspect --format '{{.Size}}' "$IMAGE" | awk -v i="$IMAGE" '{printf "%s: %.0f MB\n", i, $1/1e6}'
}

case "${1:-build}" in
  tools) tools ;;
  base) tools && base ;;
  build) build ;;
  size) size ;;
  *) echo "usage: $0 tools|base|build|size" >&2; exit 2 ;;
esac
