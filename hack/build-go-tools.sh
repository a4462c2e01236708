#!/usr/bin/env bash
# Builds the Go binaries the tests run for real (kube-apiserver, kube-controller-manager,
# kubectl, etcd, helm; `node`: kubelet, kube-scheduler, kube-proxy) through the Go module
# proxy, cached outside the repo by version.
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
# refuses it: build from a throwaway module that pins each staging module to v0.x, with
# the version stamped as Kubernetes' own build does (`kubectl get nodes` shows it).
build_k8s() {  # build_k8s OUT COMMAND...
  local out="$1"; shift
  local work staging minor major_minor stamp="k8s.io/component-base/version"
  work="$(mktemp -d)"
  minor="v0.${K8S_VERSION#v1.}"
  major_minor="${K8S_VERSION#v1.}"; major_minor="${major_minor%%.*}"
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
    {
      printf '//go:build tools\n\npackage tools\n\nimport (\n'
      for c in "$@"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
      printf ')\n'
    } > tools.go
    go mod tidy -e >/dev/null 2>&1 || true
    go mod download
    mkdir -p "$out.tmp"
    local packages=()
    for c in "$@"; do packages+=("k8s.io/kubernetes/cmd/$c"); done
    go build -tags tools -ldflags="-s -w -X $stamp.gitVersion=$K8S_VERSION -X $stamp.gitMajor=1 \
      -X $stamp.gitMinor=$major_minor -X $stamp.gitTreeState=clean -X $stamp.buildDate=1970-01-01T00:00:00Z" \
      -o "$out.tmp/" "${packages[@]}"
  )
  rm -rf "$out" && mv "$out.tmp" "$out"
  rm -rf "$work"
}

build_kubernetes() {
  local out="$CACHE/kubernetes-$K8S_VERSION"
  # An unstamped build (v0.0.0-master) fails charts' kubeVersion checks: rebuild it.
  if [[ -x "$out/kube-apiserver" && -x "$out/kube-controller-manager" && -x "$out/kubectl" ]] \
    && [[ "$("$out/kube-apiserver" --version 2>/dev/null)" == "Kubernetes $K8S_VERSION" ]]; then
    return
  fi
  log "Building kubernetes $K8S_VERSION (slow the first time)"
  build_k8s "$out" kube-apiserver kube-controller-manager kubectl
}

# The node of the one-node test cluster: pods really run under this kubelet.
build_node() {
  local out="$CACHE/kubernetes-node-$K8S_VERSION"
  if [[ -x "$out/kubelet" && -x "$out/kube-scheduler" && -x "$out/kube-proxy" ]]; then
    return
  fi
  log "Building kubelet, kube-scheduler and kube-proxy $K8S_VERSION (slow the first time)"
  build_k8s "$out" kubelet kube-scheduler kube-proxy
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
