#!/usr/bin/env bash
# Builds tests/argocd (the Argo CD health-script runner: gopher-lua as Argo CD runs it) and
# prints the binary's path. Cached outside the repo, keyed by the hash of its go.mod, go.sum
# and Go files, so a second run with the same source returns at once.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/tests/argocd"
CACHE="${LATHE_CACHE:-$HOME/.cache/lathe}"
export GOFLAGS="${GOFLAGS:--trimpath}"
export CGO_ENABLED=0

if ! command -v go >/dev/null 2>&1; then
  echo "[argocd-health] Go is not installed: it is needed to build $src" >&2
  exit 1
fi
key="$(cd "$src" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-12)"
out="$CACHE/argocd-health-$key"
mkdir -p "$CACHE"
exec 9>"$CACHE/argocd-health.lock"
flock 9  # one builder at a time
if [[ ! -x "$out/argocd-health" ]]; then
  echo "[argocd-health] Building $out/argocd-health" >&2
  mkdir -p "$out.tmp"
  (cd "$src" && go build -ldflags="-s -w" -o "$out.tmp/argocd-health" .)
  rm -rf "$out" && mv "$out.tmp" "$out"
fi
echo "$out/argocd-health"
