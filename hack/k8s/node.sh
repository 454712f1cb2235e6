#!/usr/bin/env bash
# The local real node: containerd v2 (Debian's runc), CNI bridge networking,
# kubelet and kube-proxy joined to the control plane of hack/k8s/cluster.sh.
# cluster.sh start/stop call this; it can also be run on its own while the
# control plane is up. See hack/k8s/README.md ("The real node").
#
#   node.sh build     build containerd, the CNI plugins, crictl and the images once (cached)
#   node.sh start     start containerd, kubelet, kube-proxy; wait until the node is Ready
#   node.sh stop      remove every pod through the CRI, stop everything, and leave no
#                     bridge, netns, iptables chain, mount or cgroup behind (also after kill -9)
#   node.sh status    show what runs; exit 0 when the node is Ready
#   node.sh bindir    print the directory of the node's cached binaries and images
#   node.sh import-image IMAGE   copy a Docker Engine image into the node's containerd (docker save | ctr import)
#   node.sh crictl ARGS / ctr ARGS   crictl / ctr against the node's containerd
#
# Needs root (network namespaces, iptables, cgroups). Progress goes to stderr.
set -Eeuo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SCRIPT_NAME=k8s-node
# shellcheck source=../../scripts/lib.sh
. "$HERE/../../scripts/lib.sh"

STATE_DIR="$VELOCITY_STATE_DIR/k8s"
PKI="$STATE_DIR/pki"
NODE_DIR="$STATE_DIR/node"
LOGS="$STATE_DIR/logs"
GO="${GO:-}"
if [[ -z "$GO" ]]; then
  if command -v go >/dev/null 2>&1; then GO="$(command -v go)"; else GO=/usr/local/go/bin/go; fi
fi

NODE_NAME="${VELOCITY_K8S_NODE_NAME:-velocity-node}"
POD_CIDR=10.88.0.0/16
SERVICE_CIDR=10.96.0.0/16 # must match kube-apiserver --service-cluster-ip-range in cluster.sh
KWOK_POD_CIDR=10.244.0.0/16 # kwok's simulated pod IPs (cluster.sh): never routed anywhere
KWOK_NODE_IP=10.240.0.1     # kwok's simulated node address (cluster.sh --node-ip): nothing listens there
BRIDGE=velocity0
RUNC="${VELOCITY_RUNC:-}" # default: the runc on PATH, else Debian's (installed at start)
REGISTRY="${VELOCITY_REGISTRY_ADDR:-127.0.0.1:5000}"
REGISTRY_CA="${VELOCITY_REGISTRY_CA:-$VELOCITY_STATE_DIR/registry/ca.crt}"
SANDBOX_IMAGE=velocity.local/pause:1
TEST_IMAGE=velocity.local/nettest:1
# Our iptables chains: pods may reach only this node, the pod CIDR and the service CIDR.
EGRESS_CHAIN=VELOCITY-NODE-EGRESS
HOST_CHAIN=VELOCITY-NODE-OUTPUT
# Chains removed at stop (v4 and v6, every table): the kubelet's, kube-proxy's,
# the CNI plugins' and ours. Docker's (DOCKER*) are never touched.
CHAIN_RE='^(KUBE-|CNI-|VELOCITY-NODE-)'

modver() { awk -v m="$1" '$1=="require" {$1=""; $0=$0} $1==m {print $2; exit}' "$2"; }
CONTAINERD_VERSION="$(modver github.com/containerd/containerd/v2 "$HERE/node/go.mod")"
CNI_VERSION="$(modver github.com/containernetworking/plugins "$HERE/node/go.mod")"
CRICTL_VERSION="$(modver sigs.k8s.io/cri-tools "$HERE/node/go.mod")"
NODE_KEY="node-containerd-${CONTAINERD_VERSION}-cni-${CNI_VERSION}-crictl-${CRICTL_VERSION}"
NODE_BIN="$VELOCITY_CACHE_DIR/k8s/$NODE_KEY/bin"
NODE_BINARIES=(containerd containerd-shim-runc-v2 ctr crictl cni/bridge cni/host-local cni/loopback cni/portmap pause.oci.tar nettest.oci.tar)
CONTAINERD_TAGS="no_btrfs no_devmapper no_zfs"

# kubelet and kube-proxy come from cluster.sh's build (same k8s.io/kubernetes module).
K8S_BIN="${VELOCITY_K8S_BIN_DIR:-$(bash "$HERE/cluster.sh" bindir)}"

# Progress (say, die, wait_for, now_ms, since) comes from scripts/lib.sh; generated files from
# node_config.py (containerd, CNI, kubelet, kube-proxy, images) and cluster_config.py (certificates, kubeconfigs).
T0=$(now_ms)

need_root() { [[ "$(id -u)" == 0 ]] || die "the real node needs root (network namespaces, iptables, cgroups)"; }

# ---------------------------------------------------------------------------
# build

node_digest() {
  {
    cat "$HERE/node/go.mod" "$HERE/node/go.sum" "$HERE/node/pause/main.go" "$HERE/node/nettest/main.go"
    sed -n '/^def oci_image/,/^# ----/p' "$HERE/node_config.py"
    echo "tags=$CONTAINERD_TAGS images=$SANDBOX_IMAGE,$TEST_IMAGE"
  } | sha256sum | cut -c1-16
}

is_node_built() {
  local b
  for b in "${NODE_BINARIES[@]}"; do [[ -s "$NODE_BIN/$b" ]] || return 1; done
  [[ -f "$NODE_BIN/.stamp" ]] && grep -qx "digest=$(node_digest)" "$NODE_BIN/.stamp"
}

gobuild() { GOTOOLCHAIN="${VELOCITY_GOTOOLCHAIN:-auto}" GOFLAGS=-trimpath CGO_ENABLED=0 nice -n 10 "$GO" build -p "${VELOCITY_K8S_BUILD_P:-2}" "$@"; }

cmd_build() {
  if is_node_built; then
    say "node binaries for $NODE_KEY are cached in $NODE_BIN (no rebuild)"
    return 0
  fi
  [[ -x "$GO" ]] || die "Go toolchain not found (set GO=/path/to/go); needed once to build $NODE_KEY"
  local tmp started t
  mkdir -p "$VELOCITY_CACHE_DIR/k8s/$NODE_KEY"
  tmp="$(mktemp -d "$VELOCITY_CACHE_DIR/k8s/$NODE_KEY/bin.tmp.XXXXXX")"
  started=$(date +%s)
  trap 'rm -rf "$tmp"' ERR
  cd "$HERE/node"
  t=$(now_ms)
  gobuild -tags "$CONTAINERD_TAGS" -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" -o "$tmp/" \
    github.com/containerd/containerd/v2/cmd/containerd \
    github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
    github.com/containerd/containerd/v2/cmd/ctr || die "go build of containerd failed"
  say "  containerd, containerd-shim-runc-v2, ctr $CONTAINERD_VERSION ($(since "$t"))"
  t=$(now_ms)
  mkdir -p "$tmp/cni"
  gobuild -ldflags "-s -w" -o "$tmp/cni/" \
    github.com/containernetworking/plugins/plugins/main/bridge \
    github.com/containernetworking/plugins/plugins/ipam/host-local \
    github.com/containernetworking/plugins/plugins/main/loopback \
    github.com/containernetworking/plugins/plugins/meta/portmap || die "go build of the CNI plugins failed"
  say "  CNI plugins $CNI_VERSION: bridge host-local loopback portmap ($(since "$t"))"
  t=$(now_ms)
  gobuild -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" -o "$tmp/" \
    sigs.k8s.io/cri-tools/cmd/crictl ./pause ./nettest || die "go build of crictl/pause/nettest failed"
  python3 "$HERE/node_config.py" image --binary "$tmp/pause" --name "$SANDBOX_IMAGE" --out "$tmp/pause.oci.tar"
  python3 "$HERE/node_config.py" image --binary "$tmp/nettest" --name "$TEST_IMAGE" --cmd serve --out "$tmp/nettest.oci.tar"
  rm -f "$tmp/pause" "$tmp/nettest"
  say "  crictl $CRICTL_VERSION, images $SANDBOX_IMAGE and $TEST_IMAGE ($(since "$t"))"
  printf 'containerd=%s\ncni=%s\ncrictl=%s\ngo=%s\nbuilt=%s\nseconds=%s\ndigest=%s\n' \
    "$CONTAINERD_VERSION" "$CNI_VERSION" "$CRICTL_VERSION" "$("$GO" env GOVERSION)" "$(date -u +%FT%TZ)" \
    "$(($(date +%s) - started))" "$(node_digest)" >"$tmp/.stamp"
  chmod 755 "$tmp"
  trap - ERR
  if node_procs_alive; then
    rm -rf "$tmp"
    die "the node runs binaries from $NODE_BIN: run '$0 stop' before rebuilding"
  fi
  rm -rf "$NODE_BIN"
  mv "$tmp" "$NODE_BIN"
  say "built $NODE_KEY in $(($(date +%s) - started))s: $(du -sh "$NODE_BIN" | cut -f1) in $NODE_BIN"
}

# ---------------------------------------------------------------------------
# processes

# name -> binary; a PID counts as ours only if /proc/<pid>/exe is that binary.
binary_of() {
  case "$1" in
    containerd) echo "$NODE_BIN/containerd" ;;
    kubelet | kube-proxy) echo "$K8S_BIN/$1" ;;
  esac
}
pid_of() { cat "$STATE_DIR/$1.pid" 2>/dev/null || true; }
alive() {
  local pid
  pid="$(pid_of "$1")"
  [[ -n "$pid" && -d "/proc/$pid" && "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$(binary_of "$1")" ]]
}
running() { [[ -n "$1" && -r "/proc/$1/stat" ]] && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]; }
node_procs_alive() { alive containerd || alive kubelet || alive kube-proxy; }
rss_mib() { awk '/^VmRSS:/ {print int($2 / 1024)}' "/proc/$1/status" 2>/dev/null || echo 0; }

launch() {
  local name="$1"
  shift
  setsid "$(binary_of "$name")" "$@" </dev/null >>"$LOGS/$name.log" 2>&1 9>&- &
  echo $! >"$STATE_DIR/$name.pid"
}

stop_proc() {
  local name="$1" pid i
  pid="$(pid_of "$name")"
  if [[ -n "$pid" ]] && alive "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do alive "$name" || break; sleep 0.1; done
    if alive "$name"; then kill -KILL "$pid" 2>/dev/null || true; fi
    say "stopped $name (pid $pid)"
  fi
  rm -f "$STATE_DIR/$name.pid"
}

# On every poll of wait_for (WAIT_FOR_CHECK): fail fast, with its log tail, when a started component died.
node_components_alive() {
  local c
  for c in containerd kubelet kube-proxy; do
    # (not alive(): right after launch the PID may still be setsid, before its exec)
    if [[ -f "$STATE_DIR/$c.pid" ]] && ! running "$(pid_of "$c")"; then
      say "$c exited; last lines of $LOGS/$c.log:"
      grep -v 'FLAG: --' "$LOGS/$c.log" | tail -n 25 >&2 || true
      return 1
    fi
  done
}
WAIT_FOR_CHECK=node_components_alive

ctr_() { "$NODE_BIN/ctr" --address "$NODE_DIR/containerd/containerd.sock" "$@"; }
crictl_() {
  "$NODE_BIN/crictl" --config /dev/null --runtime-endpoint "unix://$NODE_DIR/containerd/containerd.sock" \
    --image-endpoint "unix://$NODE_DIR/containerd/containerd.sock" --timeout 20s "$@"
}
admin_kubeconfig() {
  if [[ -f "$STATE_DIR/kubeconfig" ]]; then echo "$STATE_DIR/kubeconfig"; else echo "$STATE_DIR/admin.kubeconfig.tmp"; fi
}
kubectl_() { "$K8S_BIN/kubectl" --kubeconfig "$(admin_kubeconfig)" "$@"; }

# The machine's primary IPv4 address (the one on the default route's interface).
# A node IP cannot be loopback; the kubelet binds there and the API server dials it.
primary_ipv4() {
  local dev ip
  if [[ -n "${VELOCITY_K8S_NODE_IP:-}" ]]; then echo "$VELOCITY_K8S_NODE_IP"; return; fi
  dev="$(ip -4 route show default | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')"
  if [[ -n "$dev" ]]; then
    ip="$(ip -4 -o addr show dev "$dev" scope global | awk '{print $4}' | cut -d/ -f1 | head -n 1)"
  fi
  [[ -n "${ip:-}" ]] || ip="$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -n 1)"
  [[ -n "$ip" ]] || die "no global IPv4 address on this machine; set VELOCITY_K8S_NODE_IP"
  echo "$ip"
}

# ---------------------------------------------------------------------------
# certificates (signed by the control plane's CA in $PKI)

# The kubelet's client and serving certificates and kube-proxy's, signed by the control plane's CA,
# and their kubeconfigs (cluster_config.py node).
node_certs() {
  python3 "$HERE/cluster_config.py" node --pki "$PKI" --out "$NODE_DIR" --admin-kubeconfig "$(admin_kubeconfig)" \
    --node-name "$NODE_NAME" --node-ip "$NODE_IP" || die "could not issue the node's certificates"
}

# ---------------------------------------------------------------------------
# iptables: keep pod traffic on this machine

# Pods (traffic entering from the bridge) may reach the pod CIDR and, after
# kube-proxy's DNAT, Service backends; whatever still targets the service CIDR
# here had no endpoint (REJECT, like kube-proxy); everything else is refused
# on this node. Traffic to the node's own addresses goes through INPUT, not
# FORWARD. The chain is hooked first in FORWARD, ahead of Docker's DROP policy.
# On the host, OUTPUT refuses a ClusterIP that kube-proxy did not translate and
# kwok's simulated pod and node addresses (kube-proxy DNATs to kwok pod IPs, the
# API server dials the kwok node for logs), which would otherwise leave by the
# default route.
install_guard_chains() {
  iptables -w -N "$EGRESS_CHAIN"
  iptables -w -A "$EGRESS_CHAIN" -d "$SERVICE_CIDR" -m comment --comment "velocity: service IP without endpoints" \
    -j REJECT --reject-with icmp-port-unreachable
  iptables -w -A "$EGRESS_CHAIN" -d "$POD_CIDR" -j ACCEPT
  iptables -w -A "$EGRESS_CHAIN" -m comment --comment "velocity: pod traffic never leaves this machine" \
    -j REJECT --reject-with icmp-admin-prohibited
  iptables -w -I FORWARD 1 -i "$BRIDGE" -j "$EGRESS_CHAIN"
  iptables -w -N "$HOST_CHAIN"
  iptables -w -A "$HOST_CHAIN" -d "$SERVICE_CIDR" -m comment --comment "velocity: service IP without endpoints" \
    -j REJECT --reject-with icmp-port-unreachable
  iptables -w -A "$HOST_CHAIN" -d "$KWOK_POD_CIDR" -m comment --comment "velocity: kwok pod IPs are simulated" \
    -j REJECT --reject-with icmp-admin-prohibited
  iptables -w -A "$HOST_CHAIN" -d "$KWOK_NODE_IP" -m comment --comment "velocity: the kwok node address is simulated" \
    -j REJECT --reject-with icmp-admin-prohibited
  iptables -w -I OUTPUT 1 -j "$HOST_CHAIN"
  # Pods get no IPv6 beyond link-local; refuse any IPv6 they forward anyway.
  ip6tables -w -N "$EGRESS_CHAIN"
  ip6tables -w -A "$EGRESS_CHAIN" -j REJECT --reject-with adm-prohibited
  ip6tables -w -I FORWARD 1 -i "$BRIDGE" -j "$EGRESS_CHAIN"
}

# Remove every chain matching CHAIN_RE from every table, v4 and v6: first the
# rules of other chains that jump to them, then flush, then delete, in one
# iptables-restore transaction per table.
remove_chains() {
  local cmd table save chains
  for cmd in iptables ip6tables; do
    for table in filter nat mangle raw; do
      save="$("$cmd-save" -t "$table" 2>/dev/null)" || continue
      chains="$(awk -v re="$CHAIN_RE" '/^:/ {c = substr($1, 2); if (c ~ re) print c}' <<<"$save")"
      [[ -n "$chains" ]] || continue
      {
        echo "*$table"
        awk -v re="$CHAIN_RE" '/^-A / {
          for (i = 3; i <= NF; i++) if (($i == "-j" || $i == "-g") && $(i + 1) ~ re && $2 !~ re) { sub(/^-A /, "-D "); print; break }
        }' <<<"$save"
        sed 's/^/-F /' <<<"$chains"
        sed 's/^/-X /' <<<"$chains"
        echo COMMIT
      } | "$cmd-restore" -w --noflush || say "warning: could not remove all $cmd $table chains: $(tr '\n' ' ' <<<"$chains")"
    done
  done
}

# The kubelet and kube-proxy create iptables tables (mangle) that may not have
# existed; with the nft backend an emptied table stays. start records the
# tables that existed; stop deletes the new ones once they are empty.
record_tables() {
  { iptables-save | sed -n 's/^\*/iptables /p'; ip6tables-save | sed -n 's/^\*/ip6tables /p'; } >"$NODE_DIR/iptables-tables.before"
}

remove_new_tables() {
  local before="$NODE_DIR/iptables-tables.before" pair family cmd table
  [[ -f "$before" ]] || return 0
  command -v nft >/dev/null 2>&1 || { say "warning: no nft: new empty iptables tables stay"; return 0; }
  for pair in ip:iptables ip6:ip6tables; do
    family="${pair%%:*}" cmd="${pair#*:}"
    for table in $("$cmd-save" | sed -n 's/^\*//p'); do
      grep -qx "$cmd $table" "$before" && continue
      "$cmd-save" -t "$table" | grep -q '^-A ' && continue
      nft delete table "$family" "$table" 2>/dev/null || say "warning: could not delete the empty $family table $table"
    done
  done
}

# ---------------------------------------------------------------------------
# start

# Routed pod traffic needs IP forwarding; Service traffic between pods on the
# bridge needs bridged packets to see iptables (br_netfilter). Docker sets both;
# without Docker they may be off. (The egress guard holds either way: traffic
# off the machine is always routed through FORWARD.)
kernel_prereqs() {
  if [[ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then
    modprobe br_netfilter 2>/dev/null || say "warning: no br_netfilter (modprobe failed): a pod reaching a Service backed by a pod on this node may hang"
  fi
  if [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables && "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables)" != 1 ]]; then
    sysctl -qw net.bridge.bridge-nf-call-iptables=1
  fi
  [[ "$(cat /proc/sys/net/ipv4/ip_forward)" == 1 ]] || sysctl -qw net.ipv4.ip_forward=1
}

# The kubelet sets a few kernel tunables to its defaults (protectKernelDefaults
# is false): start records them, stop puts back the ones the kubelet changed.
KERNEL_TUNABLES=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
record_sysctls() { sysctl -e "${KERNEL_TUNABLES[@]}" 2>/dev/null | tr -d ' ' >"$NODE_DIR/sysctl.before" || true; }
restore_sysctls() {
  local line
  [[ -f "$NODE_DIR/sysctl.before" ]] || return 0
  while read -r line; do
    [[ "$(sysctl -n "${line%%=*}" 2>/dev/null)" == "${line#*=}" ]] || sysctl -qw "$line" || say "warning: could not restore $line"
  done <"$NODE_DIR/sysctl.before"
}

render_configs() {
  python3 "$HERE/node_config.py" render --out "$NODE_DIR" --state "$NODE_DIR" --pki "$PKI" \
    --node-ip "$NODE_IP" --node-name "$NODE_NAME" --pod-cidr "$POD_CIDR" --service-cidr "$SERVICE_CIDR" \
    --bridge "$BRIDGE" --cni-bin "$NODE_BIN/cni" --runc "$RUNC" --sandbox-image "$SANDBOX_IMAGE" \
    --registry "$REGISTRY" --registry-ca "$REGISTRY_CA"
}

import_images() {
  local img
  for img in pause nettest; do
    # (ctr repeats containerd's cgroup v1 deprecation warning on stderr; it is kept only on failure)
    ctr_ -n k8s.io images import --local "$NODE_BIN/$img.oci.tar" >/dev/null 2>"$NODE_DIR/ctr.err" \
      || { cat "$NODE_DIR/ctr.err" >&2; die "could not import $img into containerd"; }
  done
}

cri_has_images() { crictl_ inspecti "$SANDBOX_IMAGE" && crictl_ inspecti "$TEST_IMAGE"; }

# /run/netns as a shared mount point of its own, before containerd mounts a pod's netns there. If it is
# a plain directory, the first `ip netns add` afterwards (benchmarks/netns.py, an operator) bind-mounts
# /run/netns over itself as iproute2 does: containerd's earlier netns mounts end up under that view,
# where it can no longer unmount them ("remove netns: ... device or resource busy") and their pods stay
# Terminating. Made only when missing (netns-mount marks it) and undone by stop.
prepare_netns_dir() {
  mkdir -p /run/netns
  mountpoint -q /run/netns && return 0
  mount --bind /run/netns /run/netns && mount --make-shared /run/netns && touch "$NODE_DIR/netns-mount"
}

start_containerd() {
  mkdir -p "$NODE_DIR/containerd" "$NODE_DIR/s"
  prepare_netns_dir || say "warning: could not make /run/netns a mount point"
  # containerd finds its shim on PATH: ours first, never the system's (Debian's containerd 1.6 shim).
  PATH="$NODE_BIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    launch containerd --config "$NODE_DIR/containerd.toml" --log-level warn
  wait_for "containerd ($NODE_DIR/containerd/containerd.sock)" 30 ctr_ version
}

cmd_start() {
  need_root
  [[ -f "$PKI/ca.key" && -f "$(admin_kubeconfig)" ]] || die "the control plane is not up (no $PKI/ca.key): run hack/k8s/cluster.sh start"
  if alive containerd && alive kubelet && alive kube-proxy; then
    say "already running"
    return 0
  fi
  if [[ -d "$NODE_DIR" ]] || node_procs_alive; then
    say "found a stopped or partial node; cleaning it up first"
    cmd_stop
  fi
  cmd_build
  [[ -x "$K8S_BIN/kubelet" && -x "$K8S_BIN/kube-proxy" ]] || die "no kubelet/kube-proxy in $K8S_BIN: run hack/k8s/cluster.sh build"
  apt_install iptables nftables
  # A runc that is already there (e.g. the one Docker's packages bring) is used as is:
  # installing Debian's runc next to it could make apt remove Docker's.
  if [[ -z "$RUNC" ]]; then
    RUNC="$(command -v runc || true)"
    if [[ -z "$RUNC" ]]; then
      apt_install runc
      RUNC=/usr/sbin/runc
    fi
  fi
  [[ -x "$RUNC" ]] || die "no runc at $RUNC (set VELOCITY_RUNC)"
  local p
  for p in 10250 10248 10249 10256; do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && die "port $p is in use (another kubelet or kube-proxy?); one real node per machine"
  done
  NODE_IP="$(primary_ipv4)"
  mkdir -p "$NODE_DIR" "$LOGS"
  chmod 700 "$NODE_DIR"
  node_certs
  render_configs
  say "node $NODE_NAME at $NODE_IP, pods in $POD_CIDR on bridge $BRIDGE, state in $NODE_DIR"
  # The API server's kubelet client (cluster.sh) gets the kubelet API through
  # RBAC: the kubelet authorises it by SubjectAccessReview (webhook mode).
  kubectl_ apply -f - >/dev/null <<'RBAC' || die "could not grant the API server access to the kubelet API"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: velocity:kube-apiserver-kubelet-client
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:kubelet-api-admin}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: kube-apiserver-kubelet-client}
RBAC
  kernel_prereqs
  record_sysctls
  record_tables
  install_guard_chains
  start_containerd
  # The CRI plugin starts after containerd's API answers; an image imported before
  # it watches containerd's events is invisible to the kubelet. So: wait for the
  # CRI, import, and check through the CRI (importing again if it missed it).
  wait_for "containerd CRI" 30 crictl_ info
  local t
  t=$(now_ms)
  import_images
  wait_for "images visible to the CRI" 10 cri_has_images || { import_images; wait_for "images visible to the CRI" 10 cri_has_images; } \
    || die "containerd's CRI does not see $SANDBOX_IMAGE and $TEST_IMAGE"
  say "imported $SANDBOX_IMAGE and $TEST_IMAGE into containerd ($(since "$t"))"
  launch kubelet --config "$NODE_DIR/kubelet.yaml" --kubeconfig "$NODE_DIR/kubelet.kubeconfig" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --root-dir "$NODE_DIR/kubelet" \
    --cert-dir "$NODE_DIR/kubelet/pki" --node-labels "velocity.dev/node=real" --v 1
  launch kube-proxy --config "$NODE_DIR/kube-proxy.yaml" --v 1
  wait_for "kubelet healthz" 60 curl -fsS --max-time 2 http://127.0.0.1:10248/healthz
  wait_for "kube-proxy healthz" 60 curl -fsS --max-time 2 http://127.0.0.1:10256/healthz
  wait_for "node $NODE_NAME" 90 kubectl_ wait --for=condition=Ready "node/$NODE_NAME" --timeout 2s
  say "node up in $(since "$T0"): kubelet $(rss_mib "$(pid_of kubelet)") MiB, containerd $(rss_mib "$(pid_of containerd)") MiB, kube-proxy $(rss_mib "$(pid_of kube-proxy)") MiB RSS"
}

# ---------------------------------------------------------------------------
# stop

pids_of_binary() {
  local p
  for p in /proc/[0-9]*; do
    [[ "$(readlink "$p/exe" 2>/dev/null)" == "$1" ]] && echo "${p#/proc/}"
  done
  return 0
}

cmd_stop() {
  need_root
  local t pid m d
  t=$(now_ms)
  stop_proc kubelet
  stop_proc kube-proxy
  # Pods go through the CRI so that CNI DEL runs (veths, IPAM, portmap chains).
  # containerd is (re)started for that if it was killed.
  if [[ -f "$NODE_DIR/containerd.toml" && -x "$NODE_BIN/containerd" ]]; then
    if ! alive containerd; then
      say "starting containerd again to remove the pods it knows about"
      start_containerd || true
    fi
    if alive containerd; then
      crictl_ stopp $(crictl_ pods -q 2>/dev/null) >/dev/null 2>&1 || true
      crictl_ rmp -fa >/dev/null 2>&1 || say "warning: crictl rmp -fa failed"
    fi
  fi
  stop_proc containerd
  # Shims (and their containers) that outlived everything.
  for pid in $(pids_of_binary "$NODE_BIN/containerd-shim-runc-v2"); do kill -KILL "$pid" 2>/dev/null || true; done
  # Processes left in the pods' cgroups, then the cgroups (kubepods/...), deepest first.
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d "$d" ]] || continue
    for pid in $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
  done
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d "$d" ]] || continue
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || sleep 0.5
    [[ -d "$d" ]] && { find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || say "warning: could not remove cgroup $d"; }
  done
  # Network namespaces of pods whose CNI DEL never ran, then mounts under the node's directories.
  for m in /run/netns/cni-*; do
    [[ -e "$m" ]] || continue
    ip netns delete "${m##*/}" 2>/dev/null || { umount "$m" 2>/dev/null; rm -f "$m" 2>/dev/null; } \
      || say "warning: could not remove $m (mounted in another view of /run/netns?)"
  done
  if [[ -f "$NODE_DIR/netns-mount" ]] && mountpoint -q /run/netns; then
    umount /run/netns 2>/dev/null || say "warning: could not unmount /run/netns"
  fi
  awk -v dir="$NODE_DIR/" 'index($2, dir) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "warning: could not unmount $m"
  done
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE"
  remove_chains
  remove_new_tables
  restore_sysctls
  if [[ -f "$(admin_kubeconfig)" ]] && [[ -x "$K8S_BIN/kubectl" ]]; then
    kubectl_ delete node "$NODE_NAME" --ignore-not-found --wait=false --request-timeout 5s >/dev/null 2>&1 || true
  fi
  rm -rf "$NODE_DIR"
  rm -f "$PKI"/kubelet.* "$PKI"/kubelet-server.* "$PKI"/kube-proxy.*
  say "node stopped and cleaned up ($(since "$t"))"
}

cmd_status() {
  local c rc=0
  echo "node:       $NODE_NAME ($NODE_KEY, $(is_node_built && echo built || echo 'not built') in $NODE_BIN)"
  for c in containerd kubelet kube-proxy; do
    if alive "$c"; then
      printf '%-12s running  pid %-7s rss %s MiB\n' "$c" "$(pid_of "$c")" "$(rss_mib "$(pid_of "$c")")"
    else
      printf '%-12s stopped\n' "$c"
      rc=1
    fi
  done
  if [[ $rc == 0 ]] && kubectl_ wait --for=condition=Ready "node/$NODE_NAME" --timeout 1s >/dev/null 2>&1; then
    echo "ready:      yes"
  else
    echo "ready:      no"
    rc=1
  fi
  return $rc
}

case "${1:-}" in
  build) cmd_build ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  bindir) echo "$NODE_BIN" ;;
  import-image)
    [[ $# == 2 ]] || die "usage: $0 import-image IMAGE (a Docker Engine image, e.g. velocity/app:1.2.3)"
    alive containerd || die "the node is not running"
    docker image inspect "$2" >/dev/null 2>&1 || die "no Docker image $2"
    docker save "$2" | ctr_ -n k8s.io images import --local - 2>"$NODE_DIR/ctr.err" >/dev/null \
      || { cat "$NODE_DIR/ctr.err" >&2; die "could not import $2"; }
    say "imported $2 into the node's containerd (pods can use it with imagePullPolicy IfNotPresent or Never)"
    ;;
  crictl) shift; crictl_ "$@" ;;
  ctr) shift; ctr_ "$@" ;;
  *) echo "usage: $0 {build|start|stop|status|bindir|import-image IMAGE|crictl ARGS|ctr ARGS}" >&2; exit 2 ;;
esac
