#!/usr/bin/env bash
# Installs Debian's Prometheus (tests and the demo start their own instance on a free
# loopback port; the package's system service is not used) and wrk (benchmarks/serving.py)
# when they are not on PATH.
set -euo pipefail
missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v wrk >/dev/null || missing+=(wrk)
[[ ${#missing[@]} -eq 0 ]] && exit 0
echo "[install-prometheus] Installing Debian's ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
