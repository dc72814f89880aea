#!/usr/bin/env bash
# The whole test suite, twice: on the in-process API emulator, then on a
# real control plane (kube-apiserver, etcd, the controller manager, the
# scheduler and kwok nodes) that tests/realk8s builds from the Go module
# proxy (the first run on a machine builds it, later runs reuse the build)
# and starts on loopback. Needs Rust, Go, openssl and curl. Arguments go to
# `cargo test`.
#
#   tests/run.sh                   # both
#   REALK8S=0 tests/run.sh         # the emulator only
#   REALK8S_ONLY=1 tests/run.sh    # the real control plane only
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${REALK8S:-1}" != 0 ]]; then
  started=$(date +%s)
  BIN="$(bash tests/realk8s/build.sh | tail -n 1)"
  echo "the real control plane's binaries: $BIN ($(($(date +%s) - started)) s)"
  # Every kubectl the tests run is the one built with the server.
  export PATH="$BIN:$PATH"
fi

if [[ "${REALK8S_ONLY:-0}" != 1 ]]; then
  echo "== the test suite on the API emulator"
  cargo test --locked "$@"
fi
[[ "${REALK8S:-1}" == 0 ]] && exit 0

echo "== starting the real control plane (tests/realk8s/up.sh)"
started=$(date +%s)
DIR="${DORIS_OPERATOR_REALK8S_DIR:-$(mktemp -d /tmp/doris-operator-realk8s.XXXXXX)}"
trap 'bash tests/realk8s/down.sh "$DIR"' EXIT
KUBECONFIG_FILE="$(bash tests/realk8s/up.sh "$DIR" | tail -n 1)"
echo "control plane up in $(($(date +%s) - started)) s: $KUBECONFIG_FILE (logs in $DIR/logs)"

echo "== the test suite on the real control plane"
DORIS_OPERATOR_TEST_KUBECONFIG="$KUBECONFIG_FILE" DORIS_OPERATOR_TEST_AUDIT_LOG="$DIR/audit.log" \
  cargo test --locked "$@" -- --test-threads="${REALK8S_TEST_THREADS:-4}"
