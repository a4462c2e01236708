#!/usr/bin/env bash
# Builds SeaweedFS's `weed` (Apache-2.0) from the Go module proxy and prints the binary's path.
# The tests use its S3 gateway as the second store: unlike S3Proxy it enforces per-identity
# policies and speaks the AWS IAM API, so store isolation between namespaces runs for real
# (tests/integration/test_store_isolation.py). `go install` refuses the module (its go.mod
# has replace directives), so the module is copied and built as the main module. Cached
# outside the repo by version; about 15 minutes of two cores the first time.
set -euo pipefail
VERSION="${SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}"  # SeaweedFS 4.53
CACHE="${LATHE_CACHE:-$HOME/.cache/lathe}"
out="$CACHE/seaweedfs-$VERSION"
export CGO_ENABLED=0

if ! command -v go >/dev/null 2>&1; then
  echo "[seaweedfs] Go is not installed: it is needed to build weed" >&2
  exit 1
fi
mkdir -p "$CACHE"
exec 9>"$CACHE/seaweedfs.lock"
flock 9  # one builder at a time
if [[ ! -x "$out/weed" ]]; then
  echo "[seaweedfs] Building $out/weed (SeaweedFS $VERSION)" >&2
  dir="$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "github.com/seaweedfs/seaweedfs@$VERSION" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  cp -r "$dir" "$out.tmp/src" && chmod -R u+w "$out.tmp/src"
  (cd "$out.tmp/src" && nice -n 10 go build -trimpath -ldflags="-s -w" -o "$out.tmp/weed" ./weed)
  rm -rf "$out.tmp/src" && rm -rf "$out" && mv "$out.tmp" "$out"
fi
echo "$out/weed"
