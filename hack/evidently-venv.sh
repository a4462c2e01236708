#!/usr/bin/env bash
# Creates the Evidently environment that benchmarks/drift.py compares Lathe's drift check
# with, and prints its path. Evidently 0.7 needs pandas < 3, which the platform's venv has
# moved past, so it lives apart, outside the repo, keyed by its version.
set -euo pipefail
EVIDENTLY_VERSION="${EVIDENTLY_VERSION:-0.7.23}"
CACHE="${LATHE_CACHE:-$HOME/.cache/lathe}"
venv="$CACHE/evidently-$EVIDENTLY_VERSION"
mkdir -p "$CACHE"
exec 9>"$CACHE/evidently-venv.lock"
flock 9  # one builder at a time: a second caller waits instead of deleting a half-built venv
if [[ ! -x "$venv/bin/python" || ! -f "$venv/.complete" ]]; then
  echo "[evidently-venv] Installing evidently $EVIDENTLY_VERSION into $venv" >&2
  rm -rf "$venv"
  python3.11 -m venv "$venv"
  "$venv/bin/pip" install -q "evidently==$EVIDENTLY_VERSION" "pandas<3" pyarrow >&2
  touch "$venv/.complete"
fi
echo "$venv"
