#!/usr/bin/env bash
# Docker Engine from Debian's docker.io: install when missing, start dockerd when none answers.
#   docker.sh start | stop | status
set -euo pipefail
SCRIPT_NAME=docker
. "$(dirname "$0")/../lib.sh"

DIR="$VELOCITY_STATE_DIR/docker"
answers() { docker info >/dev/null 2>&1; }

case "${1:-}" in
  start)
    command -v dockerd >/dev/null || apt_install docker.io
    command -v docker >/dev/null || apt_install docker.io
    if answers; then say "Docker Engine already answering"; exit 0; fi
    mkdir -p "$DIR"
    say "starting dockerd (log: $DIR/dockerd.log)"
    nohup dockerd >"$DIR/dockerd.log" 2>&1 &
    echo $! >"$DIR/dockerd.pid"
    wait_for "Docker Engine" 60 answers || { tail -20 "$DIR/dockerd.log" >&2; die "dockerd did not answer within 60s"; }
    ;;
  stop)
    # dockerd stops its containers and its containerd first: wait for it (up to 30 s) before saying so.
    if pid_alive "$DIR/dockerd.pid"; then stop_pidfile "$DIR/dockerd.pid" dockerd 30; else say "no dockerd started by this script"; fi
    ;;
  status) answers ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
