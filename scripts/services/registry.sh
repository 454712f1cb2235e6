#!/usr/bin/env bash
# A local OCI registry for the pipeline: Debian's docker-registry (distribution 2.8),
# TLS from a local CA, htpasswd authentication, storage in the state dir.
#   registry.sh start   install if missing, make the CA/cert/password once, start on 127.0.0.1:5000
#   registry.sh stop    stop the registry this script started
#   registry.sh status  exit 0 when it answers (401 to an anonymous /v2/ is an answer)
#   registry.sh env     print the address, CA path, user name and password FILE path (never the password)
#
# Everything lives in $VELOCITY_STATE_DIR/registry (default /tmp/velocity/registry):
#   ca.crt / ca.key          local CA, made once (10 years); ca.key 0600
#   server.crt / server.key  signed by the CA; SANs 127.0.0.1, localhost and the primary IPv4
#                            (remade when that address changed or the cert is about to expire)
#   password                 the registry user's password, generated once, 0600 (Vault gets it from
#                            scripts/vault-bootstrap.py; the pipeline reads it from Vault, not from here)
#   htpasswd                 bcrypt hash of it (htpasswd -B), 0600
#   config.yml               our own registry config, 0600 (it holds the upload-state secret)
#   data/                    blobs and manifests
# Debian's own instance (systemd unit or init script, /etc/docker/registry, :5000) is disabled:
# it would take the same port. The Docker Engine trusts the CA through
# /etc/docker/certs.d/127.0.0.1:5000/ca.crt (read per connection, no engine restart).
set -euo pipefail
SCRIPT_NAME=registry
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

PORT=${VELOCITY_REGISTRY_PORT:-5000}
HOSTPORT="127.0.0.1:$PORT"
DIR="$VELOCITY_STATE_DIR/registry"
PIDFILE="$DIR/registry.pid"
LOG="$DIR/registry.log"
CONFIG="$DIR/config.yml"
PWFILE="$DIR/password"
HTPASSWD="$DIR/htpasswd"
USERNAME=${VELOCITY_REGISTRY_USER:-velocity}
DOCKER_CERTS_DIR=${VELOCITY_DOCKER_CERTS_DIR:-/etc/docker/certs.d}
BIN=/usr/bin/docker-registry
# Set when start remade a file the running registry read at its own start (cert, key, htpasswd).
RELOAD=0

# The address other hosts' (and pods') traffic would use: the source address of the default route.
primary_ipv4() {
  local dev
  dev=$(ip -4 route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')
  [ -n "$dev" ] || return 0
  ip -4 -o addr show dev "$dev" scope global 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}'
}

# HTTP status of an anonymous GET /v2/ over TLS with our CA: 401 = our registry answering; 0 = nothing.
v2_status() {
  python3 - "$HOSTPORT" "$DIR/ca.crt" <<'EOF'
import ssl, sys, urllib.request, urllib.error
hostport, cafile = sys.argv[1:3]
try:
    ctx = ssl.create_default_context(cafile=cafile)
    with urllib.request.urlopen("https://%s/v2/" % hostport, timeout=2, context=ctx) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print(0)
EOF
}
answers() { [ -f "$DIR/ca.crt" ] && [ "$(v2_status)" = 401 ]; }
# While starting: fail fast when the process has already exited.
starting() { pid_alive "$PIDFILE" || return 0; answers; }
port_taken() { ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q .; }

# Debian's package ships an instance of its own on :5000; ours replaces it.
disable_debian_instance() {
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    if systemctl is-enabled --quiet docker-registry.service 2>/dev/null || systemctl is-active --quiet docker-registry.service 2>/dev/null; then
      say "disabling Debian's docker-registry.service (this script runs its own instance)"
      systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
    fi
  elif [ -x /etc/init.d/docker-registry ] && /etc/init.d/docker-registry status >/dev/null 2>&1; then
    say "stopping Debian's docker-registry init script instance"
    /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
    command -v update-rc.d >/dev/null && update-rc.d docker-registry disable >/dev/null 2>&1 || true
  fi
}

make_ca() {
  [ -s "$DIR/ca.crt" ] && [ -s "$DIR/ca.key" ] && return 0
  say "creating the local registry CA ($DIR/ca.crt)"
  rm -f "$DIR/server.crt" "$DIR/server.key"
  (umask 077; openssl genrsa -out "$DIR/ca.key" 2048 2>/dev/null)
  openssl req -x509 -new -key "$DIR/ca.key" -sha256 -days 3650 -subj "/CN=Velocity local registry CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$DIR/ca.crt" 2>/dev/null
  chmod 0644 "$DIR/ca.crt"
}

# The server cert is remade when missing, not signed by our CA, without the current primary
# address, or expiring within 30 days.
server_cert_ok() {
  local ip=$1
  [ -s "$DIR/server.crt" ] && [ -s "$DIR/server.key" ] || return 1
  openssl verify -CAfile "$DIR/ca.crt" "$DIR/server.crt" >/dev/null 2>&1 || return 1
  openssl x509 -in "$DIR/server.crt" -noout -checkend 2592000 >/dev/null 2>&1 || return 1
  [ -z "$ip" ] || openssl x509 -in "$DIR/server.crt" -noout -ext subjectAltName 2>/dev/null | grep -q "IP Address:$ip\b"
}

make_server_cert() {
  local ip san
  ip=$(primary_ipv4)
  server_cert_ok "$ip" && return 0
  san="IP:127.0.0.1,DNS:localhost${ip:+,IP:$ip}"
  say "issuing the registry's server certificate (SANs $san)"
  (umask 077; openssl genrsa -out "$DIR/server.key" 2048 2>/dev/null)
  openssl req -new -key "$DIR/server.key" -subj "/CN=velocity-registry" -out "$DIR/server.csr" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
    "$san" > "$DIR/server.ext"
  openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial \
    -days 825 -sha256 -extfile "$DIR/server.ext" -out "$DIR/server.crt" 2>/dev/null
  rm -f "$DIR/server.csr" "$DIR/server.ext"
  RELOAD=1
}

make_credentials() {
  if [ ! -s "$PWFILE" ]; then
    (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(24))' > "$PWFILE.tmp" && mv "$PWFILE.tmp" "$PWFILE")
    say "generated the password of registry user '$USERNAME' ($PWFILE, 0600)"
  fi
  chmod 0600 "$PWFILE"
  # The password goes to htpasswd on stdin (-i), never on a command line.
  if [ ! -s "$HTPASSWD" ] || ! htpasswd -v -i "$HTPASSWD" "$USERNAME" < "$PWFILE" >/dev/null 2>&1; then
    (umask 077; htpasswd -B -C 10 -i -c "$HTPASSWD.tmp" "$USERNAME" < "$PWFILE" 2>/dev/null && mv "$HTPASSWD.tmp" "$HTPASSWD")
    RELOAD=1
  fi
}

write_config() {
  local secret
  secret=$(sed -n 's/^  secret: //p' "$CONFIG" 2>/dev/null || true)
  [ -n "$secret" ] || secret=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  (umask 077; cat > "$CONFIG.tmp" <<EOF
# Written by scripts/services/registry.sh; regenerated on start.
version: 0.1
log:
  level: info
  formatter: text
  fields:
    service: velocity-registry
storage:
  filesystem:
    rootdirectory: $DIR/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $HOSTPORT
  secret: $secret
  tls:
    certificate: $DIR/server.crt
    key: $DIR/server.key
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: velocity-registry
    path: $HTPASSWD
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
EOF
  mv "$CONFIG.tmp" "$CONFIG")
}

# Docker reads /etc/docker/certs.d/<host:port>/ca.crt on every connection to that registry.
trust_in_docker() {
  local dest="$DOCKER_CERTS_DIR/$HOSTPORT/ca.crt"
  cmp -s "$DIR/ca.crt" "$dest" 2>/dev/null && return 0
  if mkdir -p "$(dirname "$dest")" 2>/dev/null && install -m 0644 "$DIR/ca.crt" "$dest" 2>/dev/null; then
    say "Docker trusts the registry CA ($dest)"
  else
    say "WARNING: cannot write $dest (need root): docker push to $HOSTPORT will fail TLS verification"
  fi
}

start() {
  [ -x "$BIN" ] || apt_install docker-registry
  command -v htpasswd >/dev/null || apt_install apache2-utils
  command -v openssl >/dev/null || apt_install openssl
  disable_debian_instance
  # The directory is readable (the node's containerd reads ca.crt); every secret in it is 0600.
  mkdir -p "$DIR/data"
  chmod 0755 "$DIR"
  chmod 0700 "$DIR/data"
  make_ca
  make_server_cert
  make_credentials
  trust_in_docker
  if pid_alive "$PIDFILE" && answers; then
    if [ "$RELOAD" = 0 ]; then say "already running on https://$HOSTPORT"; return 0; fi
    say "certificate or htpasswd remade: restarting"
    stop
  fi
  port_taken && die "something else listens on port $PORT ($(ss -Hltnp "sport = :$PORT" | awk '{print $NF}' | head -1)); stop it, or set VELOCITY_REGISTRY_PORT"
  write_config
  say "starting docker-registry on https://$HOSTPORT (log: $LOG)"
  : >> "$LOG"
  chmod 0600 "$LOG"
  nohup "$BIN" serve "$CONFIG" >> "$LOG" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  if ! wait_for "registry" 30 starting || ! pid_alive "$PIDFILE" || ! answers; then
    tail -5 "$LOG" >&2
    die "docker-registry did not start (log: $LOG)"
  fi
}

stop() { stop_pidfile "$PIDFILE"; }

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) pid_alive "$PIDFILE" && answers ;;
  env)
    printf 'VELOCITY_REGISTRY=%s\nVELOCITY_REGISTRY_URL=https://%s\nVELOCITY_REGISTRY_CA=%s\nVELOCITY_REGISTRY_USERNAME=%s\nVELOCITY_REGISTRY_PASSWORD_FILE=%s\n' \
      "$HOSTPORT" "$HOSTPORT" "$DIR/ca.crt" "$USERNAME" "$PWFILE"
    ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
