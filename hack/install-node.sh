#!/usr/bin/env bash
# Installs what the test cluster's node runs on, from Debian's packages, when missing:
# containerd and runc (the container runtime), the CNI plugins (the pod network), buildah
# (images without a daemon or registry), debootstrap (the base image), iptables and
# conntrack (kube-proxy). Their system services are not used: tests/servers/node.py starts
# its own containerd with its own configuration.
set -euo pipefail
missing=()
command -v containerd >/dev/null || missing+=(containerd)
[[ -x /usr/sbin/runc ]] || command -v runc >/dev/null || missing+=(runc)
[[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
command -v buildah >/dev/null || missing+=(buildah)
[[ -x /usr/sbin/debootstrap ]] || missing+=(debootstrap)
[[ -x /usr/sbin/iptables ]] || missing+=(iptables)
[[ -x /usr/sbin/conntrack ]] || missing+=(conntrack)
[[ ${#missing[@]} -eq 0 ]] && exit 0
echo "[install-node] Installing Debian's ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
