#!/usr/bin/env bash
# Builds the demo guest into build/guests/blk-guest.bin (a flat binary loaded at 1 MiB)
# with the machine's gcc and binutils: freestanding, no libc, no red zone, no SSE.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../build/guests"
mkdir -p "$out"
# rxvmm/x86.h (IDT, LAPIC, IOAPIC) comes from @rxvmm/kvm-linux, which ships it for guests.
kvm_linux_include="$here/../node_modules/@rxvmm/kvm-linux/guest/include"
cflags=(-ffreestanding -fno-pic -fno-pie -fno-stack-protector -fno-asynchronous-unwind-tables
  -mno-red-zone -mgeneral-regs-only -mcmodel=small -O2 -Wall -Wextra -nostdlib -I"$here" -I"$kvm_linux_include")
gcc "${cflags[@]}" -c "$here/start.S" -o "$out/start.o"
gcc "${cflags[@]}" -c "$here/guest.c" -o "$out/guest.o"
ld -nostdlib -static -no-pie -z noexecstack --no-warn-rwx-segments -T "$here/linker.ld" "$out/start.o" "$out/guest.o" -o "$out/blk-guest.elf"
objcopy -O binary "$out/blk-guest.elf" "$out/blk-guest.bin"
