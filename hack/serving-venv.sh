#!/usr/bin/env bash
# Creates the Seldon model-server environment (seldon-core pins old Flask, protobuf, numpy
# and click, which clash with kfp and kopf), keyed by serving/requirements.txt, and prints
# its path. `seldon-core-microservice` in it runs lathe_serving.model.LatheModel.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${LATHE_CACHE:-$HOME/.cache/lathe}"
key="$(sha256sum "$root/serving/requirements.txt" | cut -c1-12)"
venv="$CACHE/seldon-venv-$key"
mkdir -p "$CACHE"
exec 9>"$CACHE/seldon-venv.lock"
flock 9  # one builder at a time: a second caller waits instead of deleting a half-built venv
if [[ ! -x "$venv/bin/seldon-core-microservice" || ! -f "$venv/.complete" ]]; then
  echo "[serving-venv] Creating $venv" >&2
  rm -rf "$venv"
  python3.11 -m venv "$venv"
  "$venv/bin/pip" install -q "setuptools<81" >&2
  "$venv/bin/pip" install -q -r "$root/serving/requirements.txt" >&2
  touch "$venv/.complete"
fi
echo "$venv"
