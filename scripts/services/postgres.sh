#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for development and tests (Debian's postgresql).
#   postgres.sh start   install if missing, init once, start on 127.0.0.1:$VELOCITY_PG_PORT
#   postgres.sh stop    stop the cluster this script started
#   postgres.sh status  exit 0 when it answers
#   postgres.sh env     print PG* variables and the admin DSN file path (no passwords)
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
  if ready; then say "already running on 127.0.0.1:$PORT"; return 0; fi
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
  say "starting PostgreSQL on 127.0.0.1:$PORT"
  as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$DIR -c max_connections=200" start >/dev/null \
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
    printf 'PGHOST=127.0.0.1\nPGPORT=%s\nPGUSER=%s\nPGDATABASE=%s\nVELOCITY_PG_PASSWORD_FILE=%s\n' "$PORT" "$ADMIN" "$DB" "$PWFILE"
    ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
