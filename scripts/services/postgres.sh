#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for development and tests (Debian's postgresql).
#   postgres.sh start   install if missing, init once, start on 127.0.0.1:$VELOCITY_PG_PORT
#                       and on the pod-facing address (below)
#   postgres.sh stop    stop the cluster this script started
#   postgres.sh status  exit 0 when it answers
#   postgres.sh env     print PG* variables and the admin DSN file path (no passwords)
#   postgres.sh pod-host  print the address pods on the real node connect to
# Pods of the local cluster's real node (hack/k8s/node.sh: pod CIDR 10.88.0.0/16) cannot
# reach the host's 127.0.0.1, so PostgreSQL also listens on the machine's primary IPv4
# address, the node IP (VELOCITY_PG_POD_HOST overrides; "none": loopback only). pg_hba
# accepts scram-sha-256 there only from the pod CIDR and from this host itself; every
# other client gets "no pg_hba.conf entry". The bridge gateway (10.88.0.1) is not used:
# the bridge exists only once the node runs a pod.
# The admin password is generated on first init and kept in a 0600 file in the
# state dir; it is a local development credential that Vault's database engine uses.
set -euo pipefail
SCRIPT_NAME=postgres
. "$(dirname "$0")/../lib.sh"

PORT=${VELOCITY_PG_PORT:-55432}
DIR="$VELOCITY_STATE_DIR/postgres"
DATA="$DIR/data"
PWFILE="$DIR/admin-password"
ADMIN=velocity_admin
DB=velocity
POD_CIDR=${VELOCITY_PG_POD_CIDR:-10.88.0.0/16}
HBA_BEGIN="# velocity: pods of the real node (postgres.sh) begin"
HBA_END="# velocity: pods of the real node (postgres.sh) end"

# The machine's primary IPv4 address, as hack/k8s/node.sh picks the node IP (same override).
pod_host() {
  local dev ip
  if [ -n "${VELOCITY_PG_POD_HOST:-}" ]; then echo "$VELOCITY_PG_POD_HOST"; return; fi
  if [ -n "${VELOCITY_K8S_NODE_IP:-}" ]; then echo "$VELOCITY_K8S_NODE_IP"; return; fi
  dev="$(ip -4 route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')"
  [ -n "$dev" ] && ip="$(ip -4 -o addr show dev "$dev" scope global | awk '{print $4}' | cut -d/ -f1 | head -n 1)"
  [ -n "${ip:-}" ] || ip="$(ip -4 -o addr show scope global 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -n 1)"
  echo "${ip:-none}"
}

listen_addresses() {
  local host; host=$(pod_host)
  if [ "$host" = none ] || [ "$host" = 127.0.0.1 ]; then echo 127.0.0.1; else echo "127.0.0.1,$host"; fi
}

# pg_hba.conf: our block (between the markers) replaced, the rest kept; returns 0 when it changed.
write_hba() {
  local hba="$DATA/pg_hba.conf" host tmp; host=$(pod_host)
  tmp=$(mktemp "$DATA/pg_hba.conf.XXXXXX")
  {
    awk -v b="$HBA_BEGIN" -v e="$HBA_END" '$0 == b {skip = 1} !skip {print} $0 == e {skip = 0}' "$hba"
    if [ "$host" != none ] && [ "$host" != 127.0.0.1 ]; then
      echo "$HBA_BEGIN"
      printf 'host    all             all             %-23s scram-sha-256\n' "$POD_CIDR" "$host/32"
      echo "$HBA_END"
    fi
  } >"$tmp"
  if cmp -s "$tmp" "$hba"; then rm -f "$tmp"; return 1; fi
  chown postgres "$tmp"; chmod 0600 "$tmp"; mv -f "$tmp" "$hba"
}

pg_bin() {
  local v
  for v in /usr/lib/postgresql/*/bin; do [ -x "$v/pg_ctl" ] && { echo "$v"; return; }; done
  return 1
}

as_pg() { runuser -u postgres -- "$@"; }

ready() { "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; }

start() {
  pg_bin >/dev/null || apt_install postgresql
  BIN=$(pg_bin) || die "PostgreSQL binaries not found after install"
  id postgres >/dev/null 2>&1 || die "the 'postgres' system user is missing (reinstall the postgresql package)"
  if ready; then
    local listening
    listening=$(as_pg "$BIN/psql" -h "$DIR" -p "$PORT" -U "$ADMIN" -d postgres -tAc "SHOW listen_addresses")
    if [ "$listening" = "$(listen_addresses)" ]; then
      if write_hba; then as_pg "$BIN/pg_ctl" -D "$DATA" reload >/dev/null; say "pg_hba.conf updated"; fi
      say "already running on $(listen_addresses | sed 's/,/, /'):$PORT"; return 0
    fi
    say "listening on $listening, want $(listen_addresses): restarting"
    as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
  fi
  mkdir -p "$DIR"
  chmod 0755 "$VELOCITY_STATE_DIR" 2>/dev/null || true
  if [ ! -f "$DATA/PG_VERSION" ]; then
    say "initialising cluster in $DATA"
    umask 077
    [ -f "$PWFILE" ] || python3 -c 'import secrets; print(secrets.token_urlsafe(24))' > "$PWFILE"
    chown postgres "$DIR" "$PWFILE"
    as_pg "$BIN/initdb" -D "$DATA" -U "$ADMIN" --pwfile="$PWFILE" --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >/dev/null
    umask 022
  fi
  chown -R postgres "$DIR"
  write_hba || true
  say "starting PostgreSQL on $(listen_addresses | sed 's/,/, /'):$PORT (pods: $(pod_host), from $POD_CIDR)"
  as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 30 \
    -o "-c listen_addresses=$(listen_addresses) -c port=$PORT -c unix_socket_directories=$DIR -c max_connections=200" start >/dev/null \
    || { tail -20 "$DIR/server.log" >&2; die "PostgreSQL did not start (log: $DIR/server.log)"; }
  wait_for "PostgreSQL" 30 ready || die "PostgreSQL is not answering on port $PORT"
  if ! as_pg "$BIN/psql" -h "$DIR" -p "$PORT" -U "$ADMIN" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$DB'" | grep -q 1; then
    as_pg "$BIN/psql" -h "$DIR" -p "$PORT" -U "$ADMIN" -d postgres -qc "CREATE DATABASE $DB" >/dev/null
    say "created database $DB"
  fi
}

stop() {
  BIN=$(pg_bin) || return 0
  [ -f "$DATA/postmaster.pid" ] || { say "not running"; return 0; }
  as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null && say "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) BIN=$(pg_bin) && ready ;;
  env)
    printf 'PGHOST=127.0.0.1\nPGPORT=%s\nPGUSER=%s\nPGDATABASE=%s\nVELOCITY_PG_PASSWORD_FILE=%s\nVELOCITY_PG_POD_HOST=%s\n' \
      "$PORT" "$ADMIN" "$DB" "$PWFILE" "$(pod_host)"
    ;;
  pod-host) pod_host ;;
  *) echo "usage: $0 start|stop|status|env|pod-host" >&2; exit 2 ;;
esac
