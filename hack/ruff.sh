#!/usr/bin/env bash
# Prints the path of a pinned ruff (formatter and linter), installed in its own small venv
# outside the repo, keyed by version, so changing it never rebuilds the platform's venv.
set -euo pipefail
RUFF_VERSION="${RUFF_VERSION:-0.17.5}"
CACHE="${LATHE_CACHE:-$HOME/.cache/lathe}"
venv="$CACHE/ruff-$RUFF_VERSION"
if [[ ! -x "$venv/bin/ruff" ]]; then
  echo "[ruff] Installing ruff $RUFF_VERSION into $venv" >&2
  rm -rf "$venv"
  python3.11 -m venv "$venv"
  "$venv/bin/pip" install -q "ruff==$RUFF_VERSION" >&2
fi
echo "$venv/bin/ruff"
