#!/usr/bin/env bash
# Stops the control plane up.sh started in DIR, by the PIDs it recorded.
set -uo pipefail
DIR="${1:-${DORIS_OPERATOR_REALK8S_DIR:-/tmp/doris-operator-realk8s}}"
[[ -d "$DIR/pids" ]] || exit 0
for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  f="$DIR/pids/$name"
  [[ -f "$f" ]] || continue
  pid=$(cat "$f")
  kill "$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
  rm -f "$f"
done
exit 0
