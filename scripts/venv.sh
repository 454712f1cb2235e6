#!/usr/bin/env bash
# Create (once) the project's Python environment and print its path.
# The venv lives outside the repo, keyed by the hash of the requirements, so a
# fresh clone on a warm machine reuses it and a changed pin builds a new one.
set -euo pipefail
SCRIPT_NAME=venv
. "$(dirname "$0")/lib.sh"
cd "$VELOCITY_ROOT"

key=$(cat requirements/dev.in requirements/constraints.txt app/pyproject.toml | sha256sum | cut -c1-12)
venv="$VELOCITY_CACHE_DIR/venv-$key"
mkdir -p "$VELOCITY_CACHE_DIR"
# Several shells (make, tests, helpers) may ask at once: one builds, the others wait.
exec 9>"$VELOCITY_CACHE_DIR/venv.lock"
flock 9
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  say "creating Python environment $venv (first run downloads from PyPI)"
  start=$SECONDS
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip setuptools wheel -c requirements/constraints.txt >&2
  "$venv/bin/pip" install -q -r requirements/dev.in -c requirements/constraints.txt >&2
  touch "$venv/.complete"
  say "Python environment ready in $((SECONDS - start))s"
fi
# The app is not installed into this shared venv (several checkouts use it at
# once); scripts/in-venv and conftest.py put app/src on PYTHONPATH instead.
# `velocity-app` is still on the venv's PATH, for whichever checkout is on PYTHONPATH.
if [ ! -x "$venv/bin/velocity-app" ] || grep -q '^# EASY-INSTALL\|^import re' "$venv/bin/velocity-app"; then
  printf '#!/bin/sh\n# velocity-app from the checkout on PYTHONPATH (see scripts/in-venv)\nexec "$(dirname "$0")/python" -m velocity_app "$@"\n' > "$venv/bin/velocity-app"
  chmod +x "$venv/bin/velocity-app"
fi
# Ansible modules run from a zip, where Python compiles every file they import on every task: keep their
# compiled code in a content-addressed cache in the venv (scripts/python/velocity_ansiballz_cache.py, loaded at
# start-up by a .pth line; VELOCITY_ANSIBALLZ_CACHE=0 turns it off). Entries written over 14 days ago are
# dropped (and compiled again when next needed).
site_packages=$(echo "$venv"/lib/python3*/site-packages)
hook=scripts/python/velocity_ansiballz_cache.py
if ! cmp -s "$hook" "$site_packages/velocity_ansiballz_cache.py"; then
  cp "$hook" "$site_packages/.velocity_ansiballz_cache.py.tmp"
  mv "$site_packages/.velocity_ansiballz_cache.py.tmp" "$site_packages/velocity_ansiballz_cache.py"
fi
pth='import velocity_ansiballz_cache; velocity_ansiballz_cache.install()'
if [ "$(cat "$site_packages/velocity-ansiballz-cache.pth" 2>/dev/null)" != "$pth" ]; then
  printf '%s\n' "$pth" > "$site_packages/.velocity-ansiballz-cache.pth.tmp"
  mv "$site_packages/.velocity-ansiballz-cache.pth.tmp" "$site_packages/velocity-ansiballz-cache.pth"
fi
if [ -d "$venv/ansiballz-pyc" ]; then find "$venv/ansiballz-pyc" -type f -mtime +14 -delete 2>/dev/null || true; fi
echo "$venv"
