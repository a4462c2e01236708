#!/usr/bin/env bash
# Installs everything the tests and the demo need, each piece cached outside the repo by
# version: the Python venv, kube-apiserver/kube-controller-manager/kubectl, etcd, helm,
# S3Proxy, SeaweedFS, Prometheus, wrk, the seldon-core environment, and the test node (containerd,
# runc, CNI plugins, buildah from Debian; kubelet, kube-scheduler, kube-proxy; the pause
# and base images, and the serving, operator, jobs and pipelines images built on it). Safe to rerun: a warm cache returns in seconds.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/install-prometheus.sh"
"$here/fetch-s3proxy.sh"
"$here/install-node.sh"
"$here/build-go-tools.sh" kubernetes etcd helm node
"$here/build-seaweedfs.sh" >/dev/null
"$here/node-images.sh" >/dev/null
"$here/build-images.sh" serving operator jobs pipelines >/dev/null
"$here/venv.sh" >/dev/null
"$here/serving-venv.sh" >/dev/null
