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
# overlay where the kernel has it: each step is a layer holding only its own files, so the
# dependency layers (pip install: minutes, GBs for pipelines) are built once and reused while
# only Lathe's code changes. vfs copies the whole tree per layer, so there it builds as one.
if grep -qw overlay /proc/filesystems; then driver=overlay layers=true; else driver=vfs layers=false; fi
buildah_() { buildah --root "$CACHE/buildah/$driver" --runroot "$CACHE/buildah/run-$driver" --storage-driver "$driver" "$@"; }

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
    buildah_ bud -q --network host --layers="$layers" -v /etc/ssl/certs:/etc/ssl/certs:ro \
      --build-arg "BASE_IMAGE=oci-archive:$base" -f "$ROOT/images/$name/Dockerfile" \
      -t "lathe.local/$name:$tag" "$ROOT" >/dev/null
    buildah_ push -q "lathe.local/$name:$tag" "oci-archive:$out.tmp:lathe.local/$name:$tag"
    if [[ "$layers" == true ]]; then
      # :latest holds the build's step images (removing the last tag would remove them): the next build's cache
      buildah_ tag "lathe.local/$name:$tag" "lathe.local/$name:latest"
      buildah_ rmi "lathe.local/$name:$tag" >/dev/null
      buildah_ rmi --prune >/dev/null 2>&1 || true  # earlier builds' steps no image uses any more
    else
      buildah_ rmi -f "lathe.local/$name:$tag" >/dev/null
    fi
    mv "$out.tmp" "$out"
    find "$CACHE" -maxdepth 1 -name "$name-*.tar" ! -name "$(basename "$out")" -delete  # older builds
  fi
  echo "$name=$out"
}

for name in "${@:-serving operator jobs}"; do
  for n in $name; do build "$n"; done
done
