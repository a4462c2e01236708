#!/usr/bin/env bash
# Creates the platform's virtual environment outside the repo, keyed by the hash of the
# dependency list in pyproject.toml and constraints.txt, and prints its path. Reuses it when present.
# The project itself is not installed into it: the Makefile puts core/, operator/, pipelines/
# and serving/ on PYTHONPATH, so one venv serves every checkout.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${LATHE_CACHE:-$HOME/.cache/lathe}"
requirements="$(python3.11 - "$root/pyproject.toml" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["test"]))
PY
)"
key="$( (echo "$requirements"; cat "$root/constraints.txt") | sha256sum | cut -c1-12)"
venv="$CACHE/venv-$key"
mkdir -p "$CACHE"
exec 9>"$CACHE/venv.lock"
flock 9  # one builder at a time: a second caller waits instead of deleting a half-built venv
if [[ ! -x "$venv/bin/python" || ! -f "$venv/.complete" ]]; then
  echo "[venv] Creating $venv (torch is a few GB the first time; pip keeps its cache)" >&2
  rm -rf "$venv"
  python3.11 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q -c "$root/constraints.txt" $requirements >&2
  touch "$venv/.complete"
fi
# Each is a few GB: forget environments of other dependency sets unused for three days.
touch "$venv/.used"
for old in "$CACHE"/venv-*; do
  [[ "$old" != "$venv" && -f "$old/.used" && -n "$(find "$old/.used" -mtime +3 2>/dev/null)" ]] && rm -rf "$old"
done
echo "$venv"
