#!/usr/bin/env bash
# Builds the real control plane the end-to-end tests run against, from the
# Go module proxy, at pinned versions: kube-apiserver, kube-controller-manager,
# kube-scheduler and kubectl (Kubernetes), etcd, and kwok (fake nodes and pod
# lifecycles). The binaries are cached outside the clone, keyed by version, so
# only the first run on a machine pays for the build.
#
# Prints the directory holding the binaries on its last line.
set -euo pipefail

K8S_VERSION=v1.36.5     # k8s.io/kubernetes; its staging modules are v0.36.5
ETCD_VERSION=v3.6.17    # go.etcd.io/etcd/server/v3
KWOK_VERSION=v0.8.0     # sigs.k8s.io/kwok

CACHE=${DORIS_OPERATOR_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/doris-operator/tools}
OUT="$CACHE/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"
BIN="$OUT/bin"
WANT=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok)

have_all() {
  local b
  for b in "${WANT[@]}"; do [[ -x "$BIN/$b" ]] || return 1; done
}
if have_all; then
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || { echo "build.sh: Go is needed to build the control plane" >&2; exit 1; }

mkdir -p "$BIN" "$OUT/src"
# A Go whose encoding/json v2 experiment is on by default makes the API
# server serve a broken OpenAPI document; keep the v1 behaviour.
if go tool dist list >/dev/null 2>&1 && GOEXPERIMENT=nojsonv2 go version >/dev/null 2>&1; then
  export GOEXPERIMENT=nojsonv2
fi
export GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0

# The go.mod of MODULE at VERSION, downloaded from the module proxy.
module_file() {
  go mod download -json "$1@$2" >/dev/null
  echo "$(go env GOMODCACHE)/cache/download/$1/@v/$2.mod"
}

# k8s.io/kubernetes cannot be required as it is (its go.mod replaces every
# staging module with a local path): a wrapper module pins each staging
# module at the matching v0 version instead.
build_kubernetes() {
  local dir="$OUT/src/kubernetes" staging="v0${K8S_VERSION#v1}"
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  mkdir -p "$dir"
  local kmod
  kmod="$(module_file k8s.io/kubernetes "$K8S_VERSION")"
  {
    echo "module doris-operator.test/kubernetes"
    echo
    grep -E '^go ' "$kmod"
    echo
    echo "godebug default=go1.26"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    grep -E '^\s+k8s\.io/[a-z0-9-]+ => \./staging/' "$kmod" |
      awk -v v="$staging" '{ print "\t" $1 " => " $1 " " v }'
    echo ")"
  } >"$dir/go.mod"
  local ld="-s -w"
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean"
  done
  (
    cd "$dir"
    go get "k8s.io/kubernetes@$K8S_VERSION" >/dev/null 2>&1 || true
    go build -trimpath -ldflags "$ld" -o "$BIN/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler \
      k8s.io/kubernetes/cmd/kubectl
  )
}

# etcd's server module replaces its sibling modules with local paths too.
build_etcd() {
  local dir="$OUT/src/etcd" v=$ETCD_VERSION
  mkdir -p "$dir"
  cat >"$dir/go.mod" <<MOD
module doris-operator.test/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 $v

replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 $v
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 $v
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 $v
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 $v
)
MOD
  (cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3)
}

build_kwok() {
  local dir="$OUT/src/kwok"
  mkdir -p "$dir"
  local kmod
  kmod="$(module_file sigs.k8s.io/kwok "$KWOK_VERSION")"
  {
    echo "module doris-operator.test/kwok"
    echo
    grep -E '^go ' "$kmod"
    echo
    echo "require sigs.k8s.io/kwok $KWOK_VERSION"
  } >"$dir/go.mod"
  (cd "$dir" && go build -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
    -o "$BIN/kwok" sigs.k8s.io/kwok/cmd/kwok)
}

[[ -x "$BIN/kube-apiserver" && -x "$BIN/kubectl" && -x "$BIN/kube-scheduler" && -x "$BIN/kube-controller-manager" ]] ||
  { echo "build.sh: building Kubernetes $K8S_VERSION (first run on this machine)" >&2; build_kubernetes; }
[[ -x "$BIN/etcd" ]] || { echo "build.sh: building etcd $ETCD_VERSION" >&2; build_etcd; }
[[ -x "$BIN/kwok" ]] || { echo "build.sh: building kwok $KWOK_VERSION" >&2; build_kwok; }
have_all || { echo "build.sh: a binary is missing from $BIN" >&2; exit 1; }
echo "$BIN"
