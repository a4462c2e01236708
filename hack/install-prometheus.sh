#!/usr/bin/env bash
# Installs Debian's Prometheus (tests and the demo start their own instance on a free
# loopback port; the package's system service is not used), wrk (benchmarks/serving.py)
# and headless Chromium (a test renders the drift report) when they are not on PATH.
set -euo pipefail
missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v wrk >/dev/null || missing+=(wrk)
command -v chromium >/dev/null || missing+=(chromium)
[[ ${#missing[@]} -eq 0 ]] && exit 0
echo "[install-prometheus] Installing Debian's ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
