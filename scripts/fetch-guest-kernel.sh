#!/usr/bin/env bash
# Fetches Debian's cloud kernel package (the version linux-image-cloud-amd64 depends on) and
# unpacks it into the user's cache, never installing it on the host:
#   ${RXVMM_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/rxvmm}/kernel/<package>/{vmlinuz,modules/}
# The cache lives outside the working tree so every clone finds it. Idempotent: when the package
# is already unpacked it only prints the folder. Prints that folder as its last stdout line.
# Offline, or where apt cannot name a version, it falls back to the newest kernel already cached.
set -euo pipefail
cache=${RXVMM_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache}/rxvmm}
mkdir -p "$cache/kernel"
# One fetch at a time: tests and provisioning may run this concurrently.
exec 9>"$cache/kernel/.lock"
flock 9

want() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -1; }
pkg=$(want || true)
if [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ] && [ -z "${RXVMM_OFFLINE:-}" ]; then
  # A fresh machine may have no package lists yet.
  apt-get update -qq >&2 || true
  pkg=$(want || true)
fi
if [ -z "$pkg" ]; then
  newest=$(ls -1d "$cache"/kernel/linux-image-*/.complete 2>/dev/null | sort -V | tail -1 || true)
  if [ -n "$newest" ]; then
    echo "fetch-guest-kernel: apt names no linux-image-cloud-amd64 version; using the cached one" >&2
    dirname "$newest"
    exit 0
  fi
  echo "fetch-guest-kernel: apt-cache names no version of linux-image-cloud-amd64 and nothing is cached" >&2
  exit 1
fi

dest="$cache/kernel/$pkg"
if [ -f "$dest/.complete" ]; then
  echo "$dest"
  exit 0
fi

work=$(mktemp -d "$cache/kernel/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "fetch-guest-kernel: downloading $pkg" >&2
# apt-get download writes into the current folder; as root it warns that _apt cannot write
# there, which is harmless (the download then runs unsandboxed).
(cd "$work" && apt-get download -q "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
deb=$(ls "$work"/*.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
  newest=$(ls -1d "$cache"/kernel/linux-image-*/.complete 2>/dev/null | sort -V | tail -1 || true)
  if [ -n "$newest" ]; then
    echo "fetch-guest-kernel: apt-get download $pkg failed; using the cached $(basename "$(dirname "$newest")")" >&2
    dirname "$newest"
    exit 0
  fi
  echo "fetch-guest-kernel: apt-get download $pkg failed" >&2
  exit 1
fi
dpkg -x "$deb" "$work/x"
ver=${pkg#linux-image-}
rm -rf "$dest"
mkdir -p "$dest"
mv "$work/x/boot/vmlinuz-$ver" "$dest/vmlinuz"
mv "$work/x/boot/config-$ver" "$dest/config" 2>/dev/null || true
mv "$work/x/lib/modules/$ver" "$dest/modules"
echo "$ver" >"$dest/version"
touch "$dest/.complete"
echo "$dest"
