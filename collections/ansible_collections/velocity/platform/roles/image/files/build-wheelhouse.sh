#!/usr/bin/env bash
# Build the image's wheelhouse on the controller: every third-party wheel the
# app needs (from its lock file) plus the build backend, so `docker build`
# installs with --no-index and never touches the network.
#   build-wheelhouse.sh LOCK_FILE WHEELHOUSE_DIR [PYTHON]
# Idempotent: a stamp keyed by the lock file's hash skips the download; a
# changed lock builds a fresh directory and swaps it in (no stale wheels).
# Prints "wheelhouse: unchanged" or "wheelhouse: built" as its last line.
set -euo pipefail
lock=$1 dest=$2 python=${3:-python3}
[ -f "$lock" ] || { echo "lock file $lock not found" >&2; exit 1; }

# The build backend named in app/pyproject.toml: pip needs it to build the
# app from source inside the image, and it must come from the wheelhouse too.
backend="setuptools>=68"
key=$( { cat "$lock"; echo "$backend"; "$python" -c 'import sys; print(sys.version_info[:2])'; } | sha256sum | cut -c1-16)
if [ -f "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "$key" ]; then
  echo "wheelhouse: unchanged"
  exit 0
fi

parent=$(dirname "$dest")
mkdir -p "$parent"
tmp=$(mktemp -d "$parent/.wheelhouse.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$python" -m pip wheel --quiet --disable-pip-version-check --only-binary=:all: \
  -r "$lock" "$backend" -w "$tmp" >&2 \
  || { echo "pip wheel -r $lock failed (is PyPI or a mirror reachable?)" >&2; exit 1; }
echo "$key" >"$tmp/.stamp"
chmod 0755 "$tmp"
rm -rf "$dest.old"
[ -d "$dest" ] && mv "$dest" "$dest.old"
mv "$tmp" "$dest"
rm -rf "$dest.old"
echo "wheelhouse: built $(find "$dest" -name '*.whl' | wc -l) wheels in $dest"
echo "wheelhouse: built"
