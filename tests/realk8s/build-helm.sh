#!/usr/bin/env bash
# Builds helm, which the chart's tests (tests/helm.rs) run, from the Go module
# proxy at a pinned version. It is cached outside the clone in a directory of
# its own, keyed by its version (the control plane's build in build.sh keeps
# its own key), so only the first run on a machine pays for the build.
#
# Prints the directory holding the binary on its last line.
set -euo pipefail

HELM_VERSION=v4.3.2     # helm.sh/helm/v4

CACHE=${DORIS_OPERATOR_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/doris-operator/tools}
BIN="$CACHE/helm-$HELM_VERSION/bin"

if [[ -x "$BIN/helm" ]]; then
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || { echo "build-helm.sh: Go is needed to build helm" >&2; exit 1; }

echo "build-helm.sh: building helm $HELM_VERSION (first run on this machine)" >&2
mkdir -p "$BIN"
export GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0
# helm's go.mod replaces nothing, so `go install module@version` builds it
# exactly as its go.mod pins its dependencies. Into a temporary directory
# first, so that an interrupted build leaves no half-written binary behind.
tmp="$(mktemp -d "$CACHE/helm-build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
major=${HELM_VERSION%%.*}
GOBIN="$tmp" go install -trimpath \
  -ldflags "-s -w -X helm.sh/helm/$major/internal/version.version=$HELM_VERSION -X helm.sh/helm/$major/internal/version.gitTreeState=clean" \
  "helm.sh/helm/$major/cmd/helm@$HELM_VERSION"
mv "$tmp/helm" "$BIN/helm"
"$BIN/helm" version --short >&2
echo "$BIN"
