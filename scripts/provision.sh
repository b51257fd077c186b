#!/usr/bin/env bash
# Installs the Debian packages the real-machine tests use (QEMU, busybox, cpio)
# and fetches the guest kernel package. Idempotent; needs root for apt.
set -euo pipefail
need=()
for pkg in qemu-system-x86 qemu-utils busybox-static cpio; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "provision: not root, cannot install ${need[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
if [ -x scripts/fetch-guest-kernel.sh ]; then bash scripts/fetch-guest-kernel.sh; fi
