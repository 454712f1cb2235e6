# Shared helpers for Velocity's scripts. Source it; do not run it.
# shellcheck shell=bash

: "${VELOCITY_CACHE_DIR:=$HOME/.cache/velocity}"
: "${VELOCITY_STATE_DIR:=/tmp/velocity}"
export VELOCITY_CACHE_DIR VELOCITY_STATE_DIR
VELOCITY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VELOCITY_ROOT

# Progress goes to stderr so that stdout stays machine-readable.
say() { printf '%s [%s] %s\n' "$(date +%H:%M:%S)" "${SCRIPT_NAME:-velocity}" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# apt_install PKG...: install the Debian packages that are missing, once.
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "need root to install ${missing[*]} (run: sudo apt-get install ${missing[*]})"
  say "installing Debian packages: ${missing[*]}"
  local stamp=/var/lib/apt/periodic/velocity-update-stamp
  if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +360 2>/dev/null)" ]; then
    apt-get update -qq >&2 && mkdir -p "$(dirname "$stamp")" && touch "$stamp"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
    || die "apt-get install ${missing[*]} failed"
}

# now_ms: milliseconds since the epoch; since START_MS: the time since then, e.g. "12.3s".
now_ms() { local t="${EPOCHREALTIME/[.,]/}"; echo $((t / 1000)); }
since() { local d=$(($(now_ms) - $1)); printf '%d.%ds' $((d / 1000)) $((d % 1000 / 100)); }

# wait_for DESCRIPTION SECONDS COMMAND...: poll until COMMAND succeeds. With WAIT_FOR_CHECK set to
# the name of a function, that function runs on every poll and its failure ends the wait at once
# (e.g. a process just started has died: no point waiting for it to answer).
wait_for() {
  local what=$1 limit=$2 start
  start=$(now_ms)
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ -n "${WAIT_FOR_CHECK:-}" ]; then "$WAIT_FOR_CHECK" || return 1; fi
    if [ $(($(now_ms) - start)) -ge $((limit * 1000)) ]; then
      say "timed out after ${limit}s waiting for $what"
      return 1
    fi
    sleep 0.2
  done
  say "$what ready after $(since "$start")"
}

# go_tool_build NAME VERSION MOD_DIR PACKAGE BIN TAGS PARALLEL: build the Go PACKAGE (its module pinned
# in MOD_DIR/go.mod) into BIN once, from the Go module proxy, static, with build TAGS (may be empty).
# A stamp beside BIN records the digest of MOD_DIR/go.mod, go.sum, the tags and the flags: a warm start
# finds it and never runs go; a changed pin rebuilds.
go_tool_build() {
  local name=$1 version=$2 mod_dir=$3 package=$4 bin=$5 tags=$6 parallel=$7
  local ldflags="-s -w" stamp digest go tmp started
  stamp="$(dirname "$bin")/.stamp"
  digest=$({ cat "$mod_dir/go.mod" "$mod_dir/go.sum"; echo "${tags:+$tags }$ldflags"; } | sha256sum | cut -c1-16)
  if [ -x "$bin" ] && [ -f "$stamp" ] && grep -qx "digest=$digest" "$stamp"; then
    say "$name $version is cached in $(dirname "$bin") (no rebuild)"
    return 0
  fi
  go=$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)
  [ -x "$go" ] || die "Go toolchain not found; needed once to build $name $version from the Go module proxy"
  mkdir -p "$(dirname "$bin")"
  tmp=$(mktemp -d "$(dirname "$bin")/tmp.XXXXXX")
  started=$SECONDS
  say "building $name $version with $("$go" env GOVERSION) (${tags:+-tags $tags, }-p $parallel; cold: minutes on 2 cores)"
  (cd "$mod_dir" && GOTOOLCHAIN="${VELOCITY_GOTOOLCHAIN:-auto}" GOFLAGS="-trimpath -buildvcs=false" CGO_ENABLED=0 \
     nice -n 10 "$go" build -p "$parallel" ${tags:+-tags "$tags"} -ldflags="$ldflags" -o "$tmp/$name" "$package") \
    || { rm -rf "$tmp"; die "go build of $package $version failed"; }
  mv "$tmp/$name" "$bin"
  rmdir "$tmp"
  printf 'version=%s\ngo=%s\nbuilt=%s\nseconds=%s\ndigest=%s\n' "$version" "$("$go" env GOVERSION)" \
    "$(date -u +%FT%TZ)" "$((SECONDS - started))" "$digest" > "$stamp"
  say "built $name $version in $((SECONDS - started))s: $(du -h "$bin" | cut -f1) at $bin"
}

pid_alive() { [ -f "$1" ] && pid_running "$(cat "$1")"; }
# A process that has exited but was not reaped (a zombie: this machine's PID 1 may not reap) is not running.
# (The state follows the last ')' of /proc/PID/stat: the command name before it may hold spaces.)
pid_running() { kill -0 "$1" 2>/dev/null && [ "$(sed -E 's/.*\) ([A-Za-z]).*/\1/' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

# stop_pidfile PIDFILE [WHAT] [SECONDS]: TERM the process a pid file names, KILL it if it is
# still there after SECONDS (default 5), remove the pid file. Says what it did.
stop_pidfile() {
  local pidfile=$1 what=${2:-} limit=${3:-5} pid
  if ! pid_alive "$pidfile"; then
    rm -f "$pidfile"
    say "not running${what:+ ($what)}"
    return 0
  fi
  pid=$(cat "$pidfile")
  kill "$pid"
  for _ in $(seq 1 $((limit * 10))); do pid_running "$pid" || break; sleep 0.1; done
  pid_running "$pid" && kill -9 "$pid"
  rm -f "$pidfile"
  say "stopped${what:+ ($what)}"
}
