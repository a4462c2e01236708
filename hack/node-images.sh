#!/usr/bin/env bash
# The test node's images, built here without a registry, as OCI archives that the node
# imports into containerd (`ctr images import`). Cached by the hash of their inputs under
# $LATHE_CACHE/images; prints NAME=ARCHIVE per image.
#   pause: the pod sandbox (images/pause/pause.c, static, nothing else in the image)
#   base:  Debian bookworm minbase with python3.11, from Debian's mirror (debootstrap): the
#          base that images/ build on where there is no registry (BASE_IMAGE elsewhere)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${LATHE_CACHE:-$HOME/.cache/lathe}/images"
SUITE="${DEBIAN_SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
log() { printf '[node-images] %s\n' "$*" >&2; }
mkdir -p "$CACHE"
buildah_() { buildah --root "$CACHE/buildah/root" --runroot "$CACHE/buildah/run" --storage-driver vfs "$@"; }

key() { cat "$@" | sha256sum | cut -c1-12; }
prune() { find "$CACHE" -maxdepth 1 -name "$1-*.tar" ! -name "$(basename "$2")" -delete; }  # older builds

pause() {
  local tag out
  tag="$(key "$ROOT/images/pause/pause.c" "$0")"
  out="$CACHE/pause-$tag.tar"
  if [[ ! -s "$out" ]]; then
    log "Building the pause image"
    local work c
    work="$(mktemp -d)"
    gcc -static -Os -o "$work/pause" "$ROOT/images/pause/pause.c"
    strip "$work/pause"
    c="$(buildah_ from scratch)"
    buildah_ copy "$c" "$work/pause" /pause >/dev/null
    buildah_ config --entrypoint '["/pause"]' --user 65535:65535 "$c"
    buildah_ commit -q --rm "$c" "lathe.local/pause:$tag" >/dev/null
    buildah_ push -q "lathe.local/pause:$tag" "oci-archive:$out.tmp:lathe.local/pause:$tag"
    buildah_ rmi -f "lathe.local/pause:$tag" >/dev/null
    mv "$out.tmp" "$out"
    rm -rf "$work"
    prune pause "$out"
  fi
  echo "pause=$out"
}

base() {
  local tag out
  tag="$(echo "$SUITE minbase python3.11 python3-pip python-is-python3 ca-certificates" | key - "$0")"
  out="$CACHE/base-$tag.tar"
  if [[ ! -s "$out" ]]; then
    log "Building the base image with debootstrap ($SUITE from $MIRROR, a few minutes)"
    local work c
    work="$(mktemp -d)"
    debootstrap --variant=minbase --include=python3.11,python3-pip,python-is-python3,ca-certificates "$SUITE" "$work/root" "$MIRROR" >&2
    rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"* "$work/root/dev/"*
    c="$(buildah_ from scratch)"
    buildah_ copy "$c" "$work/root" / >/dev/null
    buildah_ config --cmd '["python3.11"]' --env LANG=C.UTF-8 "$c"
    buildah_ commit -q --rm "$c" "lathe.local/base:$tag" >/dev/null
    buildah_ push -q "lathe.local/base:$tag" "oci-archive:$out.tmp:lathe.local/base:$tag"
    buildah_ rmi -f "lathe.local/base:$tag" >/dev/null  # the archive is what the node imports
    mv "$out.tmp" "$out"
    rm -rf "$work"
    prune base "$out"
  fi
  echo "base=$out"
}

for what in "${@:-pause base}"; do
  for w in $what; do "$w"; done
done
