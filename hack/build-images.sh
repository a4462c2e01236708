#!/usr/bin/env bash
# Builds Lathe's images from images/<name>/Dockerfile with buildah (no daemon, no registry)
# on the base image hack/node-images.sh makes from Debian's packages, as OCI archives that
# the test node imports into containerd. Cached by the hash of their inputs (the
# Dockerfile, constraints.txt, the packages it copies, the base); prints NAME=ARCHIVE.
#   hack/build-images.sh [serving] [operator] [jobs] [pipelines]     (default: serving operator jobs)
# Elsewhere the same Dockerfiles build with `docker build -f images/<name>/Dockerfile .`
# (BASE_IMAGE defaults to python:3.11-slim).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${LATHE_CACHE:-$HOME/.cache/lathe}/images"
log() { printf '[build-images] %s\n' "$*" >&2; }
buildah_() { buildah --root "$CACHE/buildah/root" --runroot "$CACHE/buildah/run" --storage-driver vfs "$@"; }

base="$("$ROOT/hack/node-images.sh" base | sed -n 's/^base=//p')"

inputs() {  # the files an image is built from, by the Dockerfile's COPY lines
  local name="$1"
  echo "$ROOT/images/$name/Dockerfile" "$ROOT/constraints.txt" "$0" "$base"
  local dirs
  dirs="$(sed -n 's/^COPY \([a-z]*\)\/ .*/\1/p' "$ROOT/images/$name/Dockerfile")"
  # every file the COPY lines take, tracked or not (what the build context holds), caches aside
  (cd "$ROOT" && find $dirs -type f -not -path '*/__pycache__/*' -not -name '*.pyc' | LC_ALL=C sort | sed "s|^|$ROOT/|")
}

build() {
  local name="$1" tag out
  tag="$(inputs "$name" | xargs cat | sha256sum | cut -c1-12)"
  out="$CACHE/$name-$tag.tar"
  if [[ ! -s "$out" ]]; then
    log "Building lathe.local/$name:$tag from images/$name/Dockerfile"
    # The host's CA bundle is mounted for the build only: pip reaches PyPI through the
    # machine's proxy, whose certificate a fresh Debian does not know.
    buildah_ bud -q --network host --layers=false -v /etc/ssl/certs:/etc/ssl/certs:ro \
      --build-arg "BASE_IMAGE=oci-archive:$base" -f "$ROOT/images/$name/Dockerfile" \
      -t "lathe.local/$name:$tag" "$ROOT" >/dev/null
    buildah_ push -q "lathe.local/$name:$tag" "oci-archive:$out.tmp:lathe.local/$name:$tag"
    buildah_ rmi -f "lathe.local/$name:$tag" >/dev/null
    mv "$out.tmp" "$out"
    find "$CACHE" -maxdepth 1 -name "$name-*.tar" ! -name "$(basename "$out")" -delete  # older builds
  fi
  echo "$name=$out"
}

for name in "${@:-serving operator jobs}"; do
  for n in $name; do build "$n"; done
done
