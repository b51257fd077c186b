#!/usr/bin/env bash
# Builds the guest of rxvmm's QEMU tests: Debian's cloud kernel (fetch-guest-kernel.sh) and an
# initramfs with static busybox, the virtio-blk modules in dependency order, the blkwork workload
# tool (scripts/guest/blkwork.c, gcc -static) and scripts/guest/init.
# The initramfs is cached under the kernel cache, named by a hash of everything that goes in, so
# a rerun with the same inputs costs a hash and every clone of any revision gets its own.
# Prints `kernel=PATH` and `initrd=PATH` on stdout (the test helpers parse them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${RXVMM_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache}/rxvmm}
busybox=${RXVMM_BUSYBOX:-/bin/busybox}
# virtio_blk over virtio_pci; their dependencies are added from the modules' own depends= fields.
roots=(virtio_pci virtio_blk)

kdir=$(bash "$here/fetch-guest-kernel.sh" | tail -1)
[ -f "$kdir/vmlinuz" ] || { echo "build-initramfs: no kernel in $kdir" >&2; exit 1; }
[ -x "$busybox" ] || { echo "build-initramfs: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }
if ldd "$busybox" >/dev/null 2>&1; then
  echo "build-initramfs: $busybox is dynamically linked; install busybox-static" >&2
  exit 1
fi
command -v gcc >/dev/null || { echo "build-initramfs: gcc missing (apt-get install gcc libc6-dev)" >&2; exit 1; }
command -v cpio >/dev/null || { echo "build-initramfs: cpio missing" >&2; exit 1; }

key=$(cat "$here/build-initramfs.sh" "$here/guest/init" "$here/guest/blkwork.c" "$kdir/version" \
  <(sha256sum "$busybox") | sha256sum | cut -c1-16)
out="$cache/initramfs/$key.cpio.gz"
if [ -f "$out" ]; then
  echo "kernel=$kdir/vmlinuz"
  echo "initrd=$out"
  exit 0
fi

mkdir -p "$cache/initramfs"
exec 9>"$cache/initramfs/.lock"
flock 9
if [ ! -f "$out" ]; then
  work=$(mktemp -d "$cache/initramfs/.build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  root="$work/root"
  mkdir -p "$root/bin" "$root/lib/modules" "$root/dev" "$root/proc" "$root/sys" "$root/tmp"
  cp "$busybox" "$root/bin/busybox"
  gcc -static -O2 -Wall -Werror -o "$root/bin/blkwork" "$here/guest/blkwork.c"
  install -m 0755 "$here/guest/init" "$root/init"

  # Module file for a module name: names use '_', files may use '-'; the package may compress.
  modfile() {
    local name=$1 f
    for f in "$name" "${name//_/-}"; do
      local hit
      hit=$(find "$kdir/modules/kernel" \( -name "$f.ko" -o -name "$f.ko.xz" -o -name "$f.ko.zst" -o -name "$f.ko.gz" \) | head -1)
      if [ -n "$hit" ]; then echo "$hit"; return 0; fi
    done
    return 1
  }
  # depends= from the module's .modinfo section (NUL-separated strings; grep -a reads them).
  moddeps() { grep -a -o 'depends=[A-Za-z0-9_,-]*' "$1" | head -1 | cut -d= -f2 | tr ',' ' '; }
  # Busybox insmod takes plain ELF: decompress as we copy.
  copymod() {
    case "$1" in
      *.xz) xz -dc "$1" >"$2" ;;
      *.zst) zstd -qdc "$1" >"$2" ;;
      *.gz) gzip -dc "$1" >"$2" ;;
      *) cp "$1" "$2" ;;
    esac
  }
  declare -A seen=()
  order=()
  visit() { # depth-first: dependencies go into the load order before their users
    local name=$1 file dep
    [ -n "${seen[$name]:-}" ] && return 0
    seen[$name]=1
    file=$(modfile "$name") || {
      # Built into the kernel: nothing to load.
      grep -q "/$name.ko" "$kdir/modules/modules.builtin" 2>/dev/null && return 0
      echo "build-initramfs: module $name not found in $kdir" >&2
      exit 1
    }
    copymod "$file" "$root/lib/modules/$name.ko"
    for dep in $(moddeps "$root/lib/modules/$name.ko"); do visit "$dep"; done
    order+=("$name")
  }
  for m in "${roots[@]}"; do visit "$m"; done
  printf '%s\n' "${order[@]}" >"$root/lib/modules/order"

  (cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --quiet -R 0:0) | gzip -9 >"$work/initrd.gz"
  mv "$work/initrd.gz" "$out"
  echo "build-initramfs: built $out (modules: ${order[*]})" >&2
  # Each edit of the guest sources makes a new image: keep the eight newest.
  ls -1t "$cache"/initramfs/*.cpio.gz | tail -n +9 | xargs -r rm -f
fi
echo "kernel=$kdir/vmlinuz"
echo "initrd=$out"
