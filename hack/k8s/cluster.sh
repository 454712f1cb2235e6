#!/usr/bin/env bash
# Local Kubernetes control plane for Velocity tests: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler built from the Go module proxy, kwok
# simulating nodes and the pod lifecycle, and one real node (node.sh: kubelet,
# kube-proxy, containerd, CNI). See hack/k8s/README.md.
#
#   cluster.sh build        build the binaries once into the version-keyed cache
#   cluster.sh start        build if needed, start everything, print the kubeconfig path
#   cluster.sh stop         stop what start started (the real node first), remove the state dir
#   cluster.sh status       show what runs, exit 0 when the API answers
#   cluster.sh kubeconfig   print the kubeconfig path
#   cluster.sh bindir       print the directory of the cached binaries
#
# VELOCITY_K8S_REAL_NODE=0 starts the control plane and kwok without the real node.
# Progress goes to stderr; the only stdout of start/kubeconfig is the path.
set -Eeuo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SCRIPT_NAME=k8s
# shellcheck source=../../scripts/lib.sh
. "$HERE/../../scripts/lib.sh"
CACHE_ROOT="$VELOCITY_CACHE_DIR"
STATE_DIR="$VELOCITY_STATE_DIR/k8s"
GO="${GO:-}"
if [[ -z "$GO" ]]; then
  if command -v go >/dev/null 2>&1; then GO="$(command -v go)"; else GO=/usr/local/go/bin/go; fi
fi

# Ports: fixed so that other tools can rely on them, overridable by env.
ETCD_PORT="${VELOCITY_K8S_ETCD_PORT:-23790}"
ETCD_PEER_PORT="${VELOCITY_K8S_ETCD_PEER_PORT:-23800}"
API_PORT="${VELOCITY_K8S_API_PORT:-16443}"
KCM_PORT="${VELOCITY_K8S_KCM_PORT:-20257}"
SCHED_PORT="${VELOCITY_K8S_SCHEDULER_PORT:-20259}"
KWOK_PORT="${VELOCITY_K8S_KWOK_PORT:-20247}"
NODES="${VELOCITY_K8S_NODES:-2}"
SA_ISSUER="${VELOCITY_K8S_SA_ISSUER:-https://kubernetes.default.svc.cluster.local}"
START_TIMEOUT="${VELOCITY_K8S_START_TIMEOUT:-90}"
BUILD_P="${VELOCITY_K8S_BUILD_P:-2}"
# The real node needs root (netns, iptables, cgroups); without root only kwok nodes.
if [[ "$(id -u)" == 0 ]]; then REAL_NODE="${VELOCITY_K8S_REAL_NODE:-1}"; else REAL_NODE="${VELOCITY_K8S_REAL_NODE:-0}"; fi

# Versions come from the pinned go.mod files, so the cache key follows them.
modver() { awk -v m="$1" '$1=="require" {$1=""; $0=$0} $1==m {print $2; exit}' "$2"; }
K8S_VERSION="$(modver k8s.io/kubernetes "$HERE/go.mod")"
ETCD_VERSION="$(modver go.etcd.io/etcd/server/v3 "$HERE/go.mod")"
KWOK_VERSION="$(modver sigs.k8s.io/kwok "$HERE/kwok/go.mod")"
VERSION_KEY="${K8S_VERSION}-etcd-${ETCD_VERSION}-kwok-${KWOK_VERSION}"
BIN_DIR="$CACHE_ROOT/k8s/$VERSION_KEY/bin"
STAMP="$BIN_DIR/.stamp"
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy kwok)

# Progress (say, die, wait_for, now_ms, since) comes from scripts/lib.sh; generated files
# (PKI, kubeconfigs, encryption config, kwok nodes) from cluster_config.py.
T0=$(now_ms)

# The stamp records what was built: the versions and a digest of the module
# files and build flags. A warm start checks binaries + stamp and never calls go.
build_digest() {
  {
    cat "$HERE/go.mod" "$HERE/go.sum" "$HERE/kwok/go.mod" "$HERE/kwok/go.sum" "$HERE/etcd/main.go"
    echo "$(ldflags k8s) $(ldflags kwok)"
  } | sha256sum | cut -c1-16
}

ldflags() {
  local minor
  minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
  case "$1" in
    k8s)
      local v
      for v in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        printf -- '-X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=clean ' \
          "$v" "$K8S_VERSION" "$v" "$v" "$minor" "$v"
      done
      printf -- '-s -w'
      ;;
    kwok)
      printf -- '-X sigs.k8s.io/kwok/pkg/consts.KubeVersion=%s -s -w' "${K8S_VERSION#v}"
      ;;
  esac
}

is_built() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x "$BIN_DIR/$b" ]] || return 1; done
  [[ -f "$STAMP" ]] && grep -qx "digest=$(build_digest)" "$STAMP"
}

cmd_build() {
  if [[ "$REAL_NODE" == 1 ]]; then
    VELOCITY_K8S_BIN_DIR="$BIN_DIR" bash "$HERE/node.sh" build || die "the real node's build failed"
  fi
  if is_built; then
    say "binaries for $VERSION_KEY are cached in $BIN_DIR (no rebuild)"
    return 0
  fi
  local c
  for c in "${COMPONENTS[@]}" kubelet kube-proxy; do
    if [[ -n "$(pid_of "$c")" ]] && [[ "$(readlink "/proc/$(pid_of "$c")/exe" 2>/dev/null)" == "$(BIN "$c")" ]]; then
      die "$c runs from $BIN_DIR: run $0 stop before rebuilding (the binaries changed)"
    fi
  done
  [[ -x "$GO" ]] || die "Go toolchain not found (set GO=/path/to/go); needed once to build $VERSION_KEY"
  local tmp started
  mkdir -p "$CACHE_ROOT/k8s/$VERSION_KEY"
  tmp="$(mktemp -d "$CACHE_ROOT/k8s/$VERSION_KEY/bin.tmp.XXXXXX")"
  started=$(date +%s)
  say "building $VERSION_KEY with $("$GO" version | awk '{print $3}') (-p $BUILD_P, cold build takes tens of minutes on 2 cores)"
  say "  kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy etcd -> $tmp"
  (
    cd "$HERE"
    GOTOOLCHAIN="${VELOCITY_GOTOOLCHAIN:-auto}" GOFLAGS=-trimpath CGO_ENABLED=0 nice -n 10 "$GO" build -p "$BUILD_P" -ldflags="$(ldflags k8s)" -o "$tmp/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler \
      k8s.io/kubernetes/cmd/kubectl \
      k8s.io/kubernetes/cmd/kubelet \
      k8s.io/kubernetes/cmd/kube-proxy \
      ./etcd
  ) || { rm -rf "$tmp"; die "go build of the control plane failed"; }
  say "  kwok -> $tmp"
  (
    cd "$HERE/kwok"
    GOTOOLCHAIN="${VELOCITY_GOTOOLCHAIN:-auto}" GOFLAGS=-trimpath CGO_ENABLED=0 nice -n 10 "$GO" build -p "$BUILD_P" -ldflags="$(ldflags kwok)" -o "$tmp/" \
      sigs.k8s.io/kwok/cmd/kwok
  ) || { rm -rf "$tmp"; die "go build of kwok failed"; }
  printf 'k8s=%s\netcd=%s\nkwok=%s\ngo=%s\nbuilt=%s\nseconds=%s\ndigest=%s\n' \
    "$K8S_VERSION" "$ETCD_VERSION" "$KWOK_VERSION" "$("$GO" env GOVERSION)" "$(date -u +%FT%TZ)" \
    "$(($(date +%s) - started))" "$(build_digest)" > "$tmp/.stamp"
  chmod 755 "$tmp"
  rm -rf "$BIN_DIR"
  mv "$tmp" "$BIN_DIR"
  say "built $VERSION_KEY in $(($(date +%s) - started))s: $(du -sh "$BIN_DIR" | cut -f1) in $BIN_DIR"
}

# ---------------------------------------------------------------------------
# start / stop / status

BIN() { echo "$BIN_DIR/$1"; }
PKI="$STATE_DIR/pki"
KUBECONFIG_PATH="$STATE_DIR/kubeconfig"
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

external() { [[ "${VELOCITY_K8S_EXTERNAL:-0}" == 1 && -n "${KUBECONFIG:-}" ]]; }

pid_of() { cat "$STATE_DIR/$1.pid" 2>/dev/null || true; }

# A PID counts as ours only if it is alive and runs the binary from our cache,
# so a recycled PID is never signalled.
alive() {
  local pid exe
  pid="$(pid_of "$1")"
  [[ -n "$pid" && -d "/proc/$pid" ]] || return 1
  exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
  [[ "$exe" == "$(BIN "$1")" ]]
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

curl_api() {
  curl -fsS --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:$API_PORT$1"
}

kubectl_admin() { "$(BIN kubectl)" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Fail fast, with the log tail, when a started component died.
check_components() {
  local c pid
  for c in "${COMPONENTS[@]}"; do
    [[ -f "$STATE_DIR/$c.pid" ]] || continue
    # Not alive(): right after launch the PID can still be setsid, before its exec.
    pid="$(pid_of "$c")"
    if [[ ! -r "/proc/$pid/stat" || "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]]; then
      say "$c exited; last lines of $STATE_DIR/logs/$c.log:"
      grep -v 'FLAG: --' "$STATE_DIR/logs/$c.log" | tail -n 25 >&2 || true
      return 1
    fi
  done
}

# launch NAME ARGS...: start a component detached from the caller (own
# session, stdin/stdout/stderr away from the caller's pipes), record its PID.
launch() {
  local name="$1"
  shift
  setsid "$(BIN "$name")" "$@" </dev/null >>"$STATE_DIR/logs/$name.log" 2>&1 9>&- &
  echo $! >"$STATE_DIR/$name.pid"
}

# cluster_config.py control-plane: PKI, encryption config, the components' kubeconfigs and kwok-nodes.yaml.
generate() {
  local t
  t=$(now_ms)
  python3 "$HERE/cluster_config.py" control-plane --state "$STATE_DIR" --api-url "https://127.0.0.1:$API_PORT" \
    --kwok-nodes "$NODES" || die "could not generate the cluster's PKI and kubeconfigs"
  say "generated CA, component certificates, service-account keys and kubeconfigs in $STATE_DIR ($(since "$t"))"
}

is_running() {
  local c
  [[ -f "$KUBECONFIG_PATH" ]] || return 1
  for c in "${COMPONENTS[@]}"; do alive "$c" || return 1; done
  curl_api /readyz >/dev/null 2>&1
}

total_rss_mib() {
  local c pid sum=0
  for c in "${COMPONENTS[@]}"; do
    pid="$(pid_of "$c")"
    [[ -n "$pid" ]] && alive "$c" && sum=$((sum + $(rss_kib "$pid")))
  done
  echo $((sum / 1024))
}

rss_report() {
  local c pid parts=()
  for c in "${COMPONENTS[@]}"; do
    pid="$(pid_of "$c")"
    alive "$c" && parts+=("$c $(($(rss_kib "$pid") / 1024))")
  done
  printf '%s MiB, ' "${parts[@]}" | sed 's/, $//'
}

node_sh() { VELOCITY_K8S_BIN_DIR="$BIN_DIR" bash "$HERE/node.sh" "$@"; }

# The real node leaves pods, mounts, netns, iptables chains and cgroups behind
# unless node.sh stop cleans up, so it runs whenever the node has state.
stop_node() {
  if [[ -d "$STATE_DIR/node" || -f "$STATE_DIR/kubelet.pid" || -f "$STATE_DIR/containerd.pid" ]]; then
    node_sh stop || say "warning: node.sh stop failed"
  fi
}

stop_components() {
  local c pid i order=(kwok kube-scheduler kube-controller-manager kube-apiserver etcd)
  stop_node
  for c in "${order[@]}"; do
    pid="$(pid_of "$c")"
    if [[ -n "$pid" ]] && alive "$c"; then
      kill -TERM "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do alive "$c" || break; sleep 0.1; done
      if alive "$c"; then kill -KILL "$pid" 2>/dev/null || true; fi
      say "stopped $c (pid $pid)"
    fi
    rm -f "$STATE_DIR/$c.pid"
  done
}

with_lock() {
  mkdir -p "$(dirname "$STATE_DIR")"
  exec 9>"$(dirname "$STATE_DIR")/k8s.lock"
  flock -w 600 9 || die "another cluster.sh holds $(dirname "$STATE_DIR")/k8s.lock"
}

STARTING=0
on_start_exit() {
  if [[ "$STARTING" == 1 ]]; then
    say "start failed; stopping what it started (logs stay in $STATE_DIR/logs until the next start)"
    stop_components
  fi
}

cmd_start() {
  if external; then
    say "VELOCITY_K8S_EXTERNAL=1: using the existing cluster in \$KUBECONFIG, starting nothing"
    echo "$KUBECONFIG"
    return 0
  fi
  with_lock
  if is_running && [[ ! -f "$PKI/encryption-config.yaml" ]]; then
    say "the running control plane predates encryption at rest: restarting it"
  elif is_running; then
    if [[ "$REAL_NODE" != 1 ]] || node_sh status >/dev/null 2>&1; then
      say "already running ($(total_rss_mib) MiB RSS), kubeconfig below"
      echo "$KUBECONFIG_PATH"
      return 0
    fi
    if [[ -f "$PKI/apiserver-kubelet-client.crt" ]] && is_built; then
      say "control plane running, real node not: starting the node"
      node_sh start || die "the real node did not start (logs in $STATE_DIR/logs)"
      echo "$KUBECONFIG_PATH"
      return 0
    fi
    say "the running control plane predates the real node (or its binaries changed): restarting it"
  fi
  if [[ -d "$STATE_DIR" ]]; then
    say "found stale state in $STATE_DIR; cleaning it up"
    stop_components
    rm -rf "$STATE_DIR"
  fi
  cmd_build
  local p
  for p in "$ETCD_PORT" "$ETCD_PEER_PORT" "$API_PORT" "$KCM_PORT" "$SCHED_PORT" "$KWOK_PORT"; do
    port_busy "$p" && die "port 127.0.0.1:$p is already in use; set VELOCITY_K8S_*_PORT (see hack/k8s/README.md)"
  done
  mkdir -p "$STATE_DIR/logs" "$STATE_DIR/etcd"
  chmod 700 "$STATE_DIR" "$STATE_DIR/etcd"
  STARTING=1
  trap on_start_exit EXIT

  generate
  WAIT_FOR_CHECK=check_components

  launch etcd --name velocity --data-dir "$STATE_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "velocity=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
    --unsafe-no-fsync --log-level warn
  wait_for "etcd on 127.0.0.1:$ETCD_PORT" 30 curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health"

  launch kube-apiserver \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --secure-port "$API_PORT" --advertise-address 127.0.0.1 \
    --endpoint-reconciler-type none \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
    --authorization-mode Node,RBAC \
    --service-account-issuer "$SA_ISSUER" --api-audiences "$SA_ISSUER" \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --allow-privileged=true \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP,Hostname \
    --encryption-provider-config "$PKI/encryption-config.yaml" \
    --profiling=false --v 1
  wait_for "kube-apiserver on https://127.0.0.1:$API_PORT" "$START_TIMEOUT" curl_api /readyz

  launch kube-controller-manager \
    --kubeconfig "$STATE_DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$STATE_DIR/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$STATE_DIR/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" \
    --leader-elect=false \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --use-service-account-credentials=true \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --profiling=false --v 1
  launch kube-scheduler \
    --kubeconfig "$STATE_DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig "$STATE_DIR/scheduler.kubeconfig" \
    --authorization-kubeconfig "$STATE_DIR/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" \
    --leader-elect=false --profiling=false --v 1
  launch kwok --kubeconfig "$STATE_DIR/kwok.kubeconfig" --config "$HERE/kwok-stages.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --node-lease-duration-seconds 40 --cidr 10.244.0.1/16 --node-ip 10.240.0.1 \
    --server-address "127.0.0.1:$KWOK_PORT"

  "$(BIN kubectl)" --kubeconfig "$STATE_DIR/admin.kubeconfig.tmp" apply -f "$STATE_DIR/kwok-nodes.yaml" >/dev/null \
    || die "could not register the kwok nodes"
  say "registered $NODES kwok node(s)"
  wait_for "kube-controller-manager" 60 curl -fsSk --max-time 2 "https://127.0.0.1:$KCM_PORT/healthz"
  wait_for "kube-scheduler" 60 curl -fsSk --max-time 2 "https://127.0.0.1:$SCHED_PORT/healthz"
  wait_for "kwok" 60 curl -fsS --max-time 2 "http://127.0.0.1:$KWOK_PORT/healthz"
  wait_for "$NODES kwok node(s)" 60 "$(BIN kubectl)" --kubeconfig "$STATE_DIR/admin.kubeconfig.tmp" \
    wait --for=condition=Ready node --selector type=kwok --timeout 2s
  wait_for "ServiceAccount default/default" 60 "$(BIN kubectl)" --kubeconfig "$STATE_DIR/admin.kubeconfig.tmp" \
    get serviceaccount default --namespace default
  if [[ "$REAL_NODE" == 1 ]]; then
    node_sh start || die "the real node did not start (logs in $STATE_DIR/logs)"
  fi
  STARTING=0
  # The kubeconfig appears only once everything is up: its presence means "ready".
  mv "$STATE_DIR/admin.kubeconfig.tmp" "$KUBECONFIG_PATH"
  say "control plane up in $(since "$T0"): $(total_rss_mib) MiB RSS ($(rss_report))"
  say "API https://127.0.0.1:$API_PORT, logs in $STATE_DIR/logs; kubeconfig:"
  echo "$KUBECONFIG_PATH"
}

cmd_stop() {
  if external; then
    say "VELOCITY_K8S_EXTERNAL=1: leaving the cluster in \$KUBECONFIG alone"
    echo "$KUBECONFIG"
    return 0
  fi
  with_lock
  if [[ ! -d "$STATE_DIR" ]]; then
    say "not running (no $STATE_DIR)"
    return 0
  fi
  stop_components
  rm -rf "$STATE_DIR"
  say "stopped; removed $STATE_DIR"
}

cmd_status() {
  if external; then
    echo "external cluster: KUBECONFIG=$KUBECONFIG"
    return 0
  fi
  local c pid rc=0
  echo "versions:   $VERSION_KEY ($(is_built && echo built || echo 'not built') in $BIN_DIR)"
  echo "state:      $STATE_DIR"
  for c in "${COMPONENTS[@]}"; do
    pid="$(pid_of "$c")"
    if alive "$c"; then
      printf '%-24s running  pid %-7s rss %s MiB\n' "$c" "$pid" $(($(rss_kib "$pid") / 1024))
    else
      printf '%-24s stopped\n' "$c"
      rc=1
    fi
  done
  if [[ -f "$KUBECONFIG_PATH" ]] && curl_api /readyz >/dev/null 2>&1; then
    echo "api:        https://127.0.0.1:$API_PORT ready, total rss $(total_rss_mib) MiB"
    echo "kubeconfig: $KUBECONFIG_PATH"
  else
    echo "api:        not ready"
    rc=1
  fi
  if [[ "$REAL_NODE" == 1 ]]; then
    node_sh status || rc=1
  fi
  return $rc
}

cmd_kubeconfig() {
  if external; then echo "$KUBECONFIG"; return 0; fi
  [[ -f "$KUBECONFIG_PATH" ]] || die "not running: run $0 start"
  echo "$KUBECONFIG_PATH"
}

case "${1:-}" in
  build) cmd_build ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  kubeconfig) cmd_kubeconfig ;;
  bindir) echo "$BIN_DIR" ;;
  *) echo "usage: $0 {build|start|stop|status|kubeconfig|bindir}" >&2; exit 2 ;;
esac
