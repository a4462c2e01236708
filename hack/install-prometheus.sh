#!/usr/bin/env bash
# Installs Prometheus from Debian's package when it is not on PATH. The package enables a
# system service; tests start their own instance on a free loopback port instead.
set -euo pipefail
command -v prometheus >/dev/null && exit 0
echo "[install-prometheus] Installing Debian's prometheus" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
