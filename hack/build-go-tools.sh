#!/usr/bin/env bash
# Builds the Go binaries the tests run for real (kube-apiserver, kube-controller-manager,
# kubectl, etcd, helm) through the Go module proxy, cached outside the repo by version.
# A second run finds them and returns at once.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
HELM_VERSION="${HELM_VERSION:-v3.19.0}"
CACHE="${LATHE_CACHE:-$HOME/.cache/lathe}"
export GOFLAGS="${GOFLAGS:--trimpath}"
export CGO_ENABLED=0

log() { printf '[build-go-tools] %s\n' "$*" >&2; }

# k8s.io/kubernetes replaces its staging modules with ./staging paths, so `go install`
# refuses it: build from a throwaway module that pins each staging module to v0.x.
build_kubernetes() {
  local out="$CACHE/kubernetes-$K8S_VERSION"
  if [[ -x "$out/kube-apiserver" && -x "$out/kube-controller-manager" && -x "$out/kubectl" ]]; then
    return
  fi
  log "Building kubernetes $K8S_VERSION (slow the first time)"
  local work staging minor
  work="$(mktemp -d)"
  minor="v0.${K8S_VERSION#v1.}"
  (
    cd "$work"
    go mod init lathe.dev/k8s-build >/dev/null 2>&1
    local gomod
    gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
    staging="$(grep -oE '^\s*k8s.io/[a-z0-9-]+ => \./staging' "$gomod" | awk '{print $1}' | sort -u)"
    {
      echo "require k8s.io/kubernetes $K8S_VERSION"
      for m in $staging; do echo "replace $m => $m $minor"; done
    } >> go.mod
    cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
    go mod tidy -e >/dev/null 2>&1 || true
    go mod download
    mkdir -p "$out.tmp"
    go build -tags tools -ldflags="-s -w" -o "$out.tmp/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kubectl
  )
  rm -rf "$out" && mv "$out.tmp" "$out"
  rm -rf "$work"
}

# etcd's server module also carries replace directives (for its sibling modules), so it
# is built the same way; `go mod tidy` pins the siblings to their published versions.
build_etcd() {
  local out="$CACHE/etcd-$ETCD_VERSION"
  [[ -x "$out/etcd" ]] && return
  log "Building etcd $ETCD_VERSION"
  local work
  work="$(mktemp -d)"
  (
    cd "$work"
    go mod init lathe.dev/etcd-build >/dev/null 2>&1
    cat > tools.go <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1
    go mod tidy >/dev/null 2>&1 || true
    mkdir -p "$out.tmp"
    go build -ldflags="-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
  )
  rm -rf "$out" && mv "$out.tmp" "$out"
  rm -rf "$work"
}

build_helm() {
  local out="$CACHE/helm-$HELM_VERSION"
  [[ -x "$out/helm" ]] && return
  log "Building helm $HELM_VERSION"
  mkdir -p "$out.tmp"
  # As helm's own Makefile does: stamp its version and the Kubernetes version it assumes
  # (otherwise `helm template` checks kubeVersion against v1.20).
  local kube_minor="${K8S_VERSION#v1.}"; kube_minor="${kube_minor%%.*}"
  GOBIN="$out.tmp" go install -ldflags="-s -w \
    -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$kube_minor \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$kube_minor" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

mkdir -p "$CACHE"
for what in "${@:-kubernetes etcd helm}"; do
  for w in $what; do "build_$w"; done
done
log "Go tools ready in $CACHE"
