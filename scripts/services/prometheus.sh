#!/usr/bin/env bash
# Prometheus for the observability tests: our own process, configuration and storage under
# $VELOCITY_STATE_DIR/prometheus. The server is built once from the Go module proxy
# (hack/prometheus/go.mod pins it) with only the service discoveries we use (file, static,
# kubernetes: build tags remove_all_sd,enable_kubernetes_sd): Debian's 2.42 build lacks
# kubernetes_sd_configs. Debian's package stays for promtool (rule checks and rule unit tests).
#   prometheus.sh build    build into $VELOCITY_CACHE_DIR/prometheus/<version>/ once (stamped)
#   prometheus.sh start    install/build if missing, write the config, start on 127.0.0.1:$VELOCITY_PROMETHEUS_PORT
#   prometheus.sh stop     stop the process this script started
#   prometheus.sh status   exit 0 when it answers /-/ready
#   prometheus.sh env      print the URL, the file_sd directory, the rules file and the RSS
#   prometheus.sh reload   re-read the configuration and rules (POST /-/reload)
#
# Scrape targets come from file_sd: any *.json or *.yml dropped into
# $VELOCITY_STATE_DIR/prometheus/targets/ is picked up within seconds, so a test (or
# an operator) adds a target without touching the configuration. The service's
# recording and alerting rules (deploy/prometheus/velocity-rules.yml) are loaded.
# Once the local cluster is up (its PKI exists; setup and the test fixtures start or reload
# this after the cluster), the job kubernetes-pods of deploy/prometheus/kubernetes-sd.yml
# discovers pods through the API server: the pods annotated prometheus.io/scrape=true in the
# real node's pod CIDR (kwok pods have no process behind them), at prometheus.io/port and
# prometheus.io/path, labelled namespace and pod. A recreated cluster needs a reload (setup
# and the test do it): the job then points at the new CA and discovers afresh.
set -euo pipefail
SCRIPT_NAME=prometheus
. "$(dirname "$0")/../lib.sh"

PORT=${VELOCITY_PROMETHEUS_PORT:-19090}
SCRAPE_INTERVAL=${VELOCITY_PROMETHEUS_SCRAPE_INTERVAL:-2s}
DIR="$VELOCITY_STATE_DIR/prometheus"
DATA="$DIR/data"
TARGETS="$DIR/targets"
CONFIG="$DIR/prometheus.yml"
PIDFILE="$DIR/prometheus.pid"
LOG="$DIR/prometheus.log"
RULES="$VELOCITY_ROOT/deploy/prometheus/velocity-rules.yml"
K8S_DIR="$VELOCITY_STATE_DIR/k8s"
K8S_PKI="$K8S_DIR/pki"
K8S_API_PORT=${VELOCITY_K8S_API_PORT:-16443}
K8S_SD_SOURCE="$VELOCITY_ROOT/deploy/prometheus/kubernetes-sd.yml"
K8S_SD="$DIR/kubernetes-sd.yml"
MOD_DIR="$VELOCITY_ROOT/hack/prometheus"
BUILD_P=${VELOCITY_PROMETHEUS_BUILD_P:-2}
TAGS=remove_all_sd,enable_kubernetes_sd
VERSION=$(awk '$1=="github.com/prometheus/prometheus" {print $2; exit}' "$MOD_DIR/go.mod")
[ -n "$VERSION" ] || die "no github.com/prometheus/prometheus requirement in $MOD_DIR/go.mod"
BIN_DIR="$VELOCITY_CACHE_DIR/prometheus/$VERSION"
BIN="$BIN_DIR/prometheus"

build() {
  go_tool_build prometheus "$VERSION" "$MOD_DIR" github.com/prometheus/prometheus/cmd/prometheus "$BIN" "$TAGS" "$BUILD_P"
}

ready() { curl -fsS -o /dev/null "http://127.0.0.1:$PORT/-/ready"; }

# The package's postinst starts its own prometheus (init script or systemd unit) on
# :9090 with /var/lib/prometheus; ours is the only one the project runs, so stop that
# one and keep it from coming back at boot.
disable_package_service() {
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
  if [ -x /etc/init.d/prometheus ]; then
    /etc/init.d/prometheus stop >/dev/null 2>&1 || true
    update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
  local pid
  for pid in $(pgrep -x prometheus 2>/dev/null || true); do
    # Only the package's daemon: it runs as the prometheus user from /usr/bin, with Debian's default storage.
    if [ "$(stat -c %U "/proc/$pid" 2>/dev/null)" = prometheus ] && ! grep -qz -- "$DIR" "/proc/$pid/cmdline" 2>/dev/null; then
      say "stopping the prometheus the Debian package started (pid $pid)"
      kill "$pid" 2>/dev/null || true
    fi
  done
}

install() {
  if [ ! -x /usr/bin/prometheus ] || ! command -v promtool >/dev/null 2>&1; then
    apt_install prometheus curl
    disable_package_service
  fi
  command -v curl >/dev/null || apt_install curl
}

write_config() {
  local tmp="$CONFIG.tmp.$$"
  cat > "$tmp" <<EOF
# Written by scripts/services/prometheus.sh; edits are lost at the next start.
global:
  scrape_interval: $SCRAPE_INTERVAL
  scrape_timeout: $SCRAPE_INTERVAL
  evaluation_interval: $SCRAPE_INTERVAL
rule_files:
  - $RULES
scrape_configs:
  - job_name: velocity-app
    metrics_path: /metrics
    scrape_timeout: $SCRAPE_INTERVAL
    file_sd_configs:
      - files: ['$TARGETS/*.json', '$TARGETS/*.yml']
        refresh_interval: 5s
EOF
  if [ -f "$K8S_PKI/ca.crt" ]; then
    # The scrape job for the cluster's pods is deploy/prometheus/kubernetes-sd.yml itself (the file an
    # operator uses), its state directory and API port rewritten to this checkout's. The PKI is reached
    # through a link named after the cluster's CA: a recreated cluster (new CA, new etcd) changes the
    # job's configuration, so a reload starts a fresh discovery; with unchanged text Prometheus would keep
    # the old one, whose watch never hears of the new cluster's pods.
    local ca_id link sd_tmp="$K8S_SD.tmp.$$"
    ca_id=$(sha256sum "$K8S_PKI/ca.crt" | cut -c1-12)
    for link in "$DIR"/k8s-pki-*; do
      [ "$link" = "$DIR/k8s-pki-$ca_id" ] || rm -f "$link"
    done
    ln -sfn "$K8S_PKI" "$DIR/k8s-pki-$ca_id"
    sed -e "s#/tmp/velocity/k8s/pki/#$DIR/k8s-pki-$ca_id/#g" -e "s#/tmp/velocity/k8s/#$K8S_DIR/#g" \
      -e "s#https://127.0.0.1:16443#https://127.0.0.1:$K8S_API_PORT#" "$K8S_SD_SOURCE" > "$sd_tmp"
    mv "$sd_tmp" "$K8S_SD"
    printf 'scrape_config_files:\n  - %s\n' "$K8S_SD" >> "$tmp"
  else
    rm -f "$K8S_SD" "$DIR"/k8s-pki-*
  fi
  mv "$tmp" "$CONFIG"
}

# Write the configuration again and have the running server re-read it (and the rules).
reload() {
  write_config
  curl -fsS -X POST "http://127.0.0.1:$PORT/-/reload" >/dev/null || die "prometheus refused to reload $CONFIG (see $LOG)"
}

stop() { stop_pidfile "$PIDFILE" "" 10; }

start() {
  # Two shells starting it at once (tests, make setup): one starts, the other finds it running.
  mkdir -p "$VELOCITY_STATE_DIR"
  exec 8>"$VELOCITY_STATE_DIR/prometheus.lock"
  flock 8
  install
  build
  if pid_alive "$PIDFILE" && [ "$(readlink "/proc/$(cat "$PIDFILE")/exe" 2>/dev/null)" != "$BIN" ]; then
    say "the running prometheus is not $BIN (an older build or Debian's): restarting it"
    stop
  fi
  if pid_alive "$PIDFILE" && ready; then
    # Re-read the configuration and rules this checkout has now (a no-op when nothing changed).
    mkdir -p "$TARGETS"
    reload
    say "already running on 127.0.0.1:$PORT (configuration reloaded)"
    return 0
  fi
  mkdir -p "$DATA" "$TARGETS"
  write_config
  # (Debian's promtool predates kubernetes_sd_configs: the server itself refuses a bad configuration.)
  say "starting prometheus $VERSION ($BIN) on 127.0.0.1:$PORT (storage $DATA)"
  setsid "$BIN" --config.file="$CONFIG" --storage.tsdb.path="$DATA" --storage.tsdb.retention.time=2d \
    --web.listen-address="127.0.0.1:$PORT" --web.enable-lifecycle \
    </dev/null >>"$LOG" 2>&1 8>&- &
  echo $! > "$PIDFILE"
  if ! wait_for "prometheus" 60 ready; then
    tail -30 "$LOG" >&2
    die "prometheus did not become ready on 127.0.0.1:$PORT within 60 s (log: $LOG)"
  fi
}


case "${1:-}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  status) pid_alive "$PIDFILE" && ready ;;
  reload)
    pid_alive "$PIDFILE" || die "not running"
    reload
    ;;
  env)
    rss=$(pid_alive "$PIDFILE" && awk '/^VmRSS/ {print $2}' "/proc/$(cat "$PIDFILE")/status" || true)
    printf 'PROMETHEUS_URL=http://127.0.0.1:%s\nPROMETHEUS_TARGETS_DIR=%s\nPROMETHEUS_RULES=%s\nPROMETHEUS_RSS_KB=%s\n' \
      "$PORT" "$TARGETS" "$RULES" "${rss:-}"
    ;;
  *) echo "usage: $0 build|start|stop|status|env|reload" >&2; exit 2 ;;
esac
