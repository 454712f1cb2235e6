#!/usr/bin/env bash
# Jaeger all-in-one (v2, the OpenTelemetry-Collector based `cmd/jaeger`) for trace tests,
# built once from the Go module proxy (hack/jaeger/go.mod pins the version).
#   jaeger.sh build    build into $VELOCITY_CACHE_DIR/jaeger/<version>/ once (stamped; a warm start never calls go)
#   jaeger.sh start    build if needed, start with memory storage, OTLP/HTTP on 127.0.0.1:$VELOCITY_JAEGER_OTLP_PORT
#                      and the query API/UI on 127.0.0.1:$VELOCITY_JAEGER_QUERY_PORT
#   jaeger.sh stop     stop the process this script started
#   jaeger.sh status   exit 0 when the query API answers
#   jaeger.sh env      print the endpoints (OTEL_EXPORTER_OTLP_ENDPOINT, JAEGER_QUERY_URL), the binary and its RSS
set -euo pipefail
SCRIPT_NAME=jaeger
. "$(dirname "$0")/../lib.sh"

OTLP_PORT=${VELOCITY_JAEGER_OTLP_PORT:-4318}
QUERY_PORT=${VELOCITY_JAEGER_QUERY_PORT:-16686}
QUERY_GRPC_PORT=${VELOCITY_JAEGER_QUERY_GRPC_PORT:-16685}
# The collector's own health endpoint; fixed so that nothing else is opened on a default port.
HEALTH_PORT=${VELOCITY_JAEGER_HEALTH_PORT:-13133}
BUILD_P=${VELOCITY_JAEGER_BUILD_P:-2}
MOD_DIR="$VELOCITY_ROOT/hack/jaeger"
DIR="$VELOCITY_STATE_DIR/jaeger"
PIDFILE="$DIR/jaeger.pid"
LOG="$DIR/jaeger.log"
CONFIG="$DIR/config.yaml"

VERSION=$(awk '$1=="github.com/jaegertracing/jaeger" {print $2; exit}' "$MOD_DIR/go.mod")
[ -n "$VERSION" ] || die "no github.com/jaegertracing/jaeger requirement in $MOD_DIR/go.mod"
BIN_DIR="$VELOCITY_CACHE_DIR/jaeger/$VERSION"
BIN="$BIN_DIR/jaeger"

build() {
  go_tool_build jaeger "$VERSION" "$MOD_DIR" github.com/jaegertracing/jaeger/cmd/jaeger "$BIN" "" "$BUILD_P"
}

ready() { curl -fsS -o /dev/null "http://127.0.0.1:$QUERY_PORT/api/services"; }

# Everything Jaeger listens on is named here and bound to loopback: OTLP/HTTP in,
# the query API/UI out, the health check; no gRPC receiver, no collector telemetry port.
write_config() {
  local tmp="$CONFIG.tmp.$$"
  cat > "$tmp" <<EOF
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    metrics:
      level: none
    logs:
      level: info
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:$HEALTH_PORT
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:$QUERY_PORT
    grpc:
      endpoint: 127.0.0.1:$QUERY_GRPC_PORT
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:$OTLP_PORT
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
EOF
  mv "$tmp" "$CONFIG"
}

start() {
  # Two shells starting it at once (tests, make setup): one starts, the other finds it running.
  mkdir -p "$VELOCITY_STATE_DIR"
  exec 8>"$VELOCITY_STATE_DIR/jaeger.lock"
  flock 8
  command -v curl >/dev/null || apt_install curl
  build
  if pid_alive "$PIDFILE" && ready; then say "already running (query 127.0.0.1:$QUERY_PORT, OTLP 127.0.0.1:$OTLP_PORT)"; return 0; fi
  mkdir -p "$DIR"
  write_config
  say "starting jaeger $VERSION (OTLP/HTTP 127.0.0.1:$OTLP_PORT, query 127.0.0.1:$QUERY_PORT, memory storage)"
  setsid "$BIN" --config "file:$CONFIG" </dev/null >>"$LOG" 2>&1 8>&- &
  echo $! > "$PIDFILE"
  if ! wait_for "jaeger" 60 ready; then
    tail -30 "$LOG" >&2
    die "jaeger did not answer on 127.0.0.1:$QUERY_PORT within 60 s (log: $LOG)"
  fi
}

stop() { stop_pidfile "$PIDFILE"; }

case "${1:-}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  status) pid_alive "$PIDFILE" && ready ;;
  env)
    rss=$(pid_alive "$PIDFILE" && awk '/^VmRSS/ {print $2}' "/proc/$(cat "$PIDFILE")/status" || true)
    printf 'OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:%s\nJAEGER_QUERY_URL=http://127.0.0.1:%s\nJAEGER_BIN=%s\nJAEGER_RSS_KB=%s\n' \
      "$OTLP_PORT" "$QUERY_PORT" "$BIN" "${rss:-}"
    ;;
  *) echo "usage: $0 build|start|stop|status|env" >&2; exit 2 ;;
esac
