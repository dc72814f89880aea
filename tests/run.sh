#!/usr/bin/env bash
# The whole test suite, twice: on the in-process API emulator, then on a
# real control plane (kube-apiserver, etcd, the controller manager, the
# scheduler and kwok nodes) that tests/realk8s builds from the Go module
# proxy (the first run on a machine builds it, later runs reuse the build)
# and starts on loopback; helm, for the chart's tests, is built the same
# way (tests/realk8s/build-helm.sh). Needs Rust, Go, openssl and curl.
# Arguments go to `cargo test`.
#
#   tests/run.sh                   # both
#   REALK8S=0 tests/run.sh         # the emulator only
#   REALK8S_ONLY=1 tests/run.sh    # the real control plane only
#
# On each, the suites that talk to Doris run once more for each other Doris
# release the simulators play (tests/fesim/profile.rs): DORIS_SIM_PROFILES,
# by default 2.1.4 (before ADMIN SET ALL FRONTENDS CONFIG) and 3.0.5.
set -euo pipefail
cd "$(dirname "$0")/.."

# helm, for the chart's tests (tests/helm.rs) on both servers.
started=$(date +%s)
HELM_BIN="$(bash tests/realk8s/build-helm.sh | tail -n 1)"
echo "helm: $HELM_BIN ($(($(date +%s) - started)) s)"
export PATH="$HELM_BIN:$PATH"

if [[ "${REALK8S:-1}" != 0 ]]; then
  started=$(date +%s)
  BIN="$(bash tests/realk8s/build.sh | tail -n 1)"
  echo "the real control plane's binaries: $BIN ($(($(date +%s) - started)) s)"
  # Every kubectl the tests run is the one built with the server.
  export PATH="$BIN:$PATH"
  # kubectl and helm are on PATH now: a test that cannot find one fails
  # rather than skipping what it checks (tests/env: tool).
  export DORIS_OPERATOR_REQUIRE_TOOLS=1
fi

DORIS_SUITES=(--test e2e_scaling --test e2e_rollout --test e2e_liveconf --test e2e_disaggregated)
read -r -a PROFILES <<<"${DORIS_SIM_PROFILES:-2.1.4 3.0.5}"

# The whole suite (as the default Doris), then the Doris suites as each
# other profile.
suites() {
  local where="$1"
  shift
  echo "== the test suite on $where"
  cargo test --locked "$@"
  for profile in "${PROFILES[@]}"; do
    echo "== the Doris suites on $where, the simulators playing Doris $profile"
    DORIS_SIM_PROFILE="$profile" cargo test --locked "${DORIS_SUITES[@]}" "$@"
  done
}

if [[ "${REALK8S_ONLY:-0}" != 1 ]]; then
  suites "the API emulator" "$@"
fi
[[ "${REALK8S:-1}" == 0 ]] && exit 0

echo "== starting the real control plane (tests/realk8s/up.sh)"
started=$(date +%s)
DIR="${DORIS_OPERATOR_REALK8S_DIR:-$(mktemp -d /tmp/doris-operator-realk8s.XXXXXX)}"
trap 'bash tests/realk8s/down.sh "$DIR"' EXIT
KUBECONFIG_FILE="$(bash tests/realk8s/up.sh "$DIR" | tail -n 1)"
echo "control plane up in $(($(date +%s) - started)) s: $KUBECONFIG_FILE (logs in $DIR/logs)"

export DORIS_OPERATOR_TEST_KUBECONFIG="$KUBECONFIG_FILE" DORIS_OPERATOR_TEST_AUDIT_LOG="$DIR/audit.log"
export RUST_TEST_THREADS="${REALK8S_TEST_THREADS:-4}"
suites "the real control plane" "$@"
