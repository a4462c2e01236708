#!/usr/bin/env bash
# Installs Debian's Prometheus (tests and the demo start their own instance on a free
# loopback port; the package's system service is not used), wrk (benchmarks/serving.py)
# headless Chromium (a test renders the drift report) and tmux (a test reads
# `kubectl lathe get md --watch` off a terminal screen) when they are not on PATH.
set -euo pipefail
missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v wrk >/dev/null || missing+=(wrk)
command -v chromium >/dev/null || missing+=(chromium)
command -v tmux >/dev/null || missing+=(tmux)
[[ ${#missing[@]} -eq 0 ]] && exit 0
echo "[install-prometheus] Installing Debian's ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
