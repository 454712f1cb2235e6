#!/usr/bin/env bash
# Build a minimal Debian root filesystem tarball with debootstrap.
#   build-rootfs.sh OUTPUT_TAR SUITE MIRROR PACKAGES(comma separated)
# Writes OUTPUT_TAR atomically (temp file + rename); does nothing when it exists.
# Needs root (debootstrap chroots and creates device nodes).
set -euo pipefail
out=$1 suite=$2 mirror=$3 packages=$4

[ -s "$out" ] && { echo "rootfs tarball already present: $out"; exit 0; }
[ "$(id -u)" -eq 0 ] || { echo "debootstrap needs root" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }

mkdir -p "$(dirname "$out")"
work=$(mktemp -d "$(dirname "$out")/.rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"

debootstrap --variant=minbase --include="$packages" --components=main \
  "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -30 "$work/debootstrap.log" >&2; echo "debootstrap $suite from $mirror failed" >&2; exit 1; }

# Point apt at the public mirror (not a build-time proxy) and strip what a
# runtime image does not need: docs, man pages, locales, apt caches and lists.
# /var/lib/dpkg stays: SBOM tools read the package database from it.
printf 'deb http://deb.debian.org/debian %s main\n' "$suite" >"$root/etc/apt/sources.list"
rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
  "$root"/usr/share/locale/* "$root"/usr/share/lintian "$root"/var/cache/apt/*.bin \
  "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log \
  "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old "$root"/tmp/* "$root"/root/.cache
find "$root/usr/lib" -name '__pycache__' -type d -prune -exec rm -rf {} +
# Keep the copyright files out but their directories in place for dpkg's sake.
# Reproducible-ish: a fixed machine-id and no resolv.conf from the build host.
: >"$root/etc/machine-id"
rm -f "$root/etc/resolv.conf" "$root/etc/hostname"

tar --numeric-owner --xattrs -C "$root" -cf "$work/rootfs.tar" .
mv "$work/rootfs.tar" "$out"
echo "built rootfs tarball $out ($(du -h "$out" | cut -f1))"
