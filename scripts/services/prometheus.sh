#!/usr/bin/env bash
# Prometheus (Debian's `prometheus` package) for the observability tests: our own
# process, configuration and storage under $VELOCITY_STATE_DIR/prometheus, never the
# package's service.
#   prometheus.sh start    install if missing, write the config, start on 127.0.0.1:$VELOCITY_PROMETHEUS_PORT
#   prometheus.sh stop     stop the process this script started
#   prometheus.sh status   exit 0 when it answers /-/ready
#   prometheus.sh env      print the URL, the file_sd directory, the rules file and the RSS
#   prometheus.sh reload   re-read the configuration and rules (POST /-/reload)
#
# Scrape targets come from file_sd: any *.json or *.yml dropped into
# $VELOCITY_STATE_DIR/prometheus/targets/ is picked up within seconds, so a test (or
# an operator) adds a target without touching the configuration. The service's
# recording and alerting rules (deploy/prometheus/velocity-rules.yml) are loaded.
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
BIN=/usr/bin/prometheus

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
  if [ ! -x "$BIN" ] || ! command -v promtool >/dev/null 2>&1; then
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
  mv "$tmp" "$CONFIG"
}

start() {
  # Two shells starting it at once (tests, make setup): one starts, the other finds it running.
  mkdir -p "$VELOCITY_STATE_DIR"
  exec 8>"$VELOCITY_STATE_DIR/prometheus.lock"
  flock 8
  install
  if pid_alive "$PIDFILE" && ready; then
    # Re-read the configuration and rules this checkout has now (a no-op when nothing changed).
    mkdir -p "$TARGETS"
    write_config
    curl -fsS -X POST "http://127.0.0.1:$PORT/-/reload" >/dev/null || die "prometheus refused to reload $CONFIG (see $LOG)"
    say "already running on 127.0.0.1:$PORT (configuration reloaded)"
    return 0
  fi
  mkdir -p "$DATA" "$TARGETS"
  write_config
  promtool check config "$CONFIG" >/dev/null || die "promtool rejected $CONFIG"
  say "starting prometheus $("$BIN" --version 2>&1 | awk 'NR==1 {print $3}') on 127.0.0.1:$PORT (storage $DATA)"
  setsid "$BIN" --config.file="$CONFIG" --storage.tsdb.path="$DATA" --storage.tsdb.retention.time=2d \
    --web.listen-address="127.0.0.1:$PORT" --web.enable-lifecycle \
    </dev/null >>"$LOG" 2>&1 8>&- &
  echo $! > "$PIDFILE"
  if ! wait_for "prometheus" 60 ready; then
    tail -30 "$LOG" >&2
    die "prometheus did not become ready on 127.0.0.1:$PORT within 60 s (log: $LOG)"
  fi
}

stop() { stop_pidfile "$PIDFILE" "" 10; }

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) pid_alive "$PIDFILE" && ready ;;
  reload)
    pid_alive "$PIDFILE" || die "not running"
    write_config
    curl -fsS -X POST "http://127.0.0.1:$PORT/-/reload" >/dev/null || die "reload refused (see $LOG)"
    ;;
  env)
    rss=$(pid_alive "$PIDFILE" && awk '/^VmRSS/ {print $2}' "/proc/$(cat "$PIDFILE")/status" || true)
    printf 'PROMETHEUS_URL=http://127.0.0.1:%s\nPROMETHEUS_TARGETS_DIR=%s\nPROMETHEUS_RULES=%s\nPROMETHEUS_RSS_KB=%s\n' \
      "$PORT" "$TARGETS" "$RULES" "${rss:-}"
    ;;
  *) echo "usage: $0 start|stop|status|env|reload" >&2; exit 2 ;;
esac
