#!/usr/bin/env bash
# Configure the local OpenBao like a real Velocity environment (idempotent).
#   vault-bootstrap.sh [dev|file|tls] [--kubeconfig PATH]
# Starts PostgreSQL, OpenBao and the registry (scripts/services/*.sh) if needed, then runs
# scripts/vault-bootstrap.py with the root token from its 0600 file. Prints one
# JSON line (what changed, the local credential file paths); never a secret.
set -euo pipefail
SCRIPT_NAME=vault-bootstrap
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

MODE=${VELOCITY_VAULT_MODE:-dev}
case "${1:-}" in dev|file|tls) MODE=$1; shift ;; esac

bash "$VELOCITY_ROOT/scripts/services/postgres.sh" start
bash "$VELOCITY_ROOT/scripts/services/vault.sh" start "$MODE"
# The registry's credentials go to KV secret/velocity/registry (the pipeline reads them from there).
bash "$VELOCITY_ROOT/scripts/services/registry.sh" start
eval "$(bash "$VELOCITY_ROOT/scripts/services/registry.sh" env | sed 's/^/export /')"
eval "$(bash "$VELOCITY_ROOT/scripts/services/postgres.sh" env | sed 's/^/export /')"
eval "$(bash "$VELOCITY_ROOT/scripts/services/vault.sh" env "$MODE" | sed 's/^/export /')"
venv=$(bash "$VELOCITY_ROOT/scripts/venv.sh")
say "bootstrapping $VAULT_ADDR"
exec "$venv/bin/python" "$VELOCITY_ROOT/scripts/vault-bootstrap.py" \
  --state-dir "$VELOCITY_STATE_DIR/vault/$MODE" \
  --pg-host "$PGHOST" --pg-port "$PGPORT" --pg-admin "$PGUSER" --pg-database "$PGDATABASE" \
  --pg-password-file "$VELOCITY_PG_PASSWORD_FILE" \
  --registry-server "$VELOCITY_REGISTRY" --registry-username "$VELOCITY_REGISTRY_USERNAME" \
  --registry-password-file "$VELOCITY_REGISTRY_PASSWORD_FILE" "$@"
