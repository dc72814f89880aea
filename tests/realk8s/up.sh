#!/usr/bin/env bash
# Starts a real Kubernetes control plane on loopback for the end-to-end
# tests: etcd, kube-apiserver (RBAC, token auth, Pod Security admission, an
# audit log), kube-controller-manager, kube-scheduler, and kwok running a few
# fake nodes with their pods' lifecycles and a default StorageClass whose
# claims kwok provisions.
#
#   tests/realk8s/up.sh [DIR]     # prints DIR/kubeconfig on its last line
#   tests/realk8s/down.sh [DIR]   # stops what up.sh started, by PID
#
# DIR (default $DORIS_OPERATOR_REALK8S_DIR, else /tmp/doris-operator-realk8s)
# holds certificates, etcd's data, logs, the audit log and the PIDs. Ports
# come from REALK8S_PORT_BASE: etcd +0/+1, the API server +443, kwok +250.
# Without it, the first of 26000, 27000, ... 31000 whose ports nothing
# listens on: below Linux's ephemeral range (32768 on), so that no client
# socket of the tests can hold one of them when etcd binds it.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DIR="${1:-${DORIS_OPERATOR_REALK8S_DIR:-/tmp/doris-operator-realk8s}}"
listened() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -n "${REALK8S_PORT_BASE:-}" ]; then
  BASE="$REALK8S_PORT_BASE"
else
  BASE=""
  for candidate in 26000 27000 28000 29000 30000 31000; do
    if ! listened "$candidate" && ! listened $((candidate + 1)) &&
      ! listened $((candidate + 250)) && ! listened $((candidate + 443)); then
      BASE="$candidate"
      break
    fi
  done
  [ -n "$BASE" ] || { echo "up.sh: no free ports from 26000 to 31443; set REALK8S_PORT_BASE" >&2; exit 1; }
fi
NODES="${REALK8S_NODES:-4}"
ETCD_PORT=$((BASE)) ETCD_PEER_PORT=$((BASE + 1)) API_PORT=$((BASE + 443)) KWOK_PORT=$((BASE + 250))

BIN="$(bash "$HERE/build.sh" | tail -n 1)"
export PATH="$BIN:$PATH"

"$HERE/down.sh" "$DIR" >/dev/null 2>&1 || true
rm -rf "$DIR"
mkdir -p "$DIR/pki" "$DIR/logs" "$DIR/pids"
cd "$DIR"

# --- Certificates: a CA, the API server's serving certificate, and the
# service account signing key. Clients authenticate with tokens.
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=realk8s-ca" \
  -keyout pki/ca.key -out pki/ca.crt 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
  -keyout pki/apiserver.key -out pki/apiserver.csr 2>/dev/null
cat >pki/apiserver.ext <<EOF
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth
EOF
openssl x509 -req -in pki/apiserver.csr -CA pki/ca.crt -CAkey pki/ca.key -CAcreateserial \
  -days 3650 -extfile pki/apiserver.ext -out pki/apiserver.crt 2>/dev/null
openssl genrsa -out pki/sa.key 2048 2>/dev/null
openssl rsa -in pki/sa.key -pubout -out pki/sa.pub 2>/dev/null

token() { openssl rand -hex 16; }
ADMIN_TOKEN=$(token) KCM_TOKEN=$(token) SCHED_TOKEN=$(token) KWOK_TOKEN=$(token)
RUNNER_TOKEN=$(token)
# operator-runner: what the tests and benchmarks run operators as (each
# impersonating its ServiceAccount), so that the audit log can record the
# operators' reads without the tests' own.
cat >pki/tokens.csv <<EOF
$ADMIN_TOKEN,admin,admin,"system:masters"
$RUNNER_TOKEN,operator-runner,operator-runner,"system:masters"
$KCM_TOKEN,system:kube-controller-manager,kcm
$SCHED_TOKEN,system:kube-scheduler,scheduler
$KWOK_TOKEN,kwok,kwok,"system:masters"
EOF

kubeconfig() { # FILE TOKEN NAMESPACE
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: realk8s
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 pki/ca.crt)
users:
- name: user
  user:
    token: $2
contexts:
- name: realk8s
  context:
    cluster: realk8s
    user: user
    namespace: ${3:-default}
current-context: realk8s
EOF
}
kubeconfig kubeconfig "$ADMIN_TOKEN"
kubeconfig operator.kubeconfig "$RUNNER_TOKEN"
kubeconfig pki/kcm.kubeconfig "$KCM_TOKEN"
kubeconfig pki/scheduler.kubeconfig "$SCHED_TOKEN"
kubeconfig pki/kwok.kubeconfig "$KWOK_TOKEN"

# Writes with who made them: what the benchmarks count. Reads (get and
# list; watches are not counted) of operators run as operator-runner (the
# audit policy sees the user that authenticated, not the one impersonated),
# and reads of the kinds tests/env/reads.rs counts by anyone.
cat >audit-policy.yaml <<EOF
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  users: [operator-runner]
  verbs: [get, list]
- level: Metadata
  verbs: [get, list]
  resources:
  - group: monitoring.coreos.com
    resources: [servicemonitors]
  - group: ""
    resources: [events]
- level: None
  verbs: [get, list, watch]
- level: Metadata
EOF

start() { # NAME ARGS...
  local name=$1
  shift
  "$@" >"logs/$name.log" 2>&1 &
  echo $! >"pids/$name"
}

start etcd etcd --name realk8s --data-dir "$DIR/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "realk8s=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync --quota-backend-bytes=4294967296 --log-level=warn
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$ETCD_PORT/health" >/dev/null 2>&1 && break
  sleep 0.1
done

start kube-apiserver kube-apiserver \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
  --tls-cert-file=pki/apiserver.crt --tls-private-key-file=pki/apiserver.key \
  --client-ca-file=pki/ca.crt --token-auth-file=pki/tokens.csv \
  --authorization-mode=RBAC --allow-privileged=true \
  --service-account-key-file=pki/sa.pub --service-account-signing-key-file=pki/sa.key \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-cluster-ip-range=10.96.0.0/16 \
  --audit-policy-file=audit-policy.yaml --audit-log-path="$DIR/audit.log" \
  --audit-log-maxsize=1000 --audit-log-maxbackup=1 --audit-log-mode=blocking \
  --profiling=false --v=1

ready=
for _ in $(seq 600); do
  if kubectl --kubeconfig kubeconfig get --raw /readyz >/dev/null 2>&1; then
    ready=1
    break
  fi
  if ! kill -0 "$(cat pids/kube-apiserver)" 2>/dev/null; then break; fi
  sleep 0.1
done
[[ -n "$ready" ]] || { tail -n 30 logs/kube-apiserver.log >&2; echo "up.sh: kube-apiserver did not become ready" >&2; exit 1; }

start kube-controller-manager kube-controller-manager \
  --kubeconfig=pki/kcm.kubeconfig --authentication-kubeconfig=pki/kcm.kubeconfig \
  --authorization-kubeconfig=pki/kcm.kubeconfig \
  --leader-elect=false --use-service-account-credentials=true \
  --service-account-private-key-file=pki/sa.key --root-ca-file=pki/ca.crt \
  --controllers='*,-node-ipam-controller,-cloud-node-lifecycle-controller,-service-lb-controller,-node-route-controller' \
  --bind-address=127.0.0.1 --secure-port=0 --v=1
start kube-scheduler kube-scheduler \
  --kubeconfig=pki/scheduler.kubeconfig --authentication-kubeconfig=pki/scheduler.kubeconfig \
  --authorization-kubeconfig=pki/scheduler.kubeconfig \
  --leader-elect=false --bind-address=127.0.0.1 --secure-port=0 --v=1

# kwok: the stages are this directory's (nodes become Ready, pods run and
# become Ready, claims of the provisioner kwok.x-k8s.io/volume are bound).
for f in "$HERE"/stages/*.yaml; do echo "---"; cat "$f"; done >kwok-stages.yaml
start kwok kwok --kubeconfig=pki/kwok.kubeconfig --config=kwok-stages.yaml \
  --manage-all-nodes=true --server-address="127.0.0.1:$KWOK_PORT" \
  --node-lease-duration-seconds=40

K="kubectl --kubeconfig kubeconfig"
for i in $(seq 0 $((NODES - 1))); do
  cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    topology.kubernetes.io/zone: zone-$((i % 2))
    type: kwok
spec: {}
status:
  allocatable: {cpu: "64", memory: 256Gi, pods: "250", ephemeral-storage: 1Ti}
  capacity: {cpu: "64", memory: 256Gi, pods: "250", ephemeral-storage: 1Ti}
EOF
done | $K apply -f - >/dev/null
cat <<EOF | $K apply -f - >/dev/null
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kwok.x-k8s.io/volume
reclaimPolicy: Delete
volumeBindingMode: Immediate
allowVolumeExpansion: true
EOF

for _ in $(seq 300); do
  n=$($K get nodes --no-headers 2>/dev/null | grep -cw Ready || true)
  [[ "$n" -ge "$NODES" ]] && break
  sleep 0.2
done
[[ "${n:-0}" -ge "$NODES" ]] || { tail -n 30 logs/kwok.log >&2; echo "up.sh: kwok nodes did not become Ready" >&2; exit 1; }
# The default ServiceAccount of a namespace is made by the controller
# manager; wait for it to be working.
for _ in $(seq 300); do
  $K -n default get serviceaccount default >/dev/null 2>&1 && break
  sleep 0.2
done
echo "$DIR/kubeconfig"
