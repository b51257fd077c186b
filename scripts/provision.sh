#!/usr/bin/env bash
# Installs the Debian packages the real-machine tests use (QEMU and qemu-storage-daemon, busybox,
# cpio, a C compiler for the static guest workload tool), fetches the guest kernel package and
# builds the guest initramfs (scripts/build-initramfs.sh). Idempotent and quick when all is
# present; needs root for apt only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
need=()
# qemu-system-common (pulled in by qemu-system-x86) ships qemu-storage-daemon, the reference back-end.
for pkg in qemu-system-x86 qemu-system-common qemu-utils busybox-static cpio gcc libc6-dev; do
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
for tool in qemu-system-x86_64 qemu-storage-daemon; do
  command -v "$tool" >/dev/null || { echo "provision: $tool missing after install" >&2; exit 1; }
done
# Kernel package (cached outside the tree) and the initramfs built from scripts/guest/.
bash "$here/build-initramfs.sh" >&2
