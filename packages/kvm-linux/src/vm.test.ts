import { readSync } from 'node:fs';
import {
  IOEVENTFD_FLAG_DATAMATCH,
  IOEVENTFD_FLAG_DEASSIGN,
  IOEVENTFD_FLAG_PIO,
  IRQFD_FLAG_DEASSIGN,
  IRQFD_FLAG_RESAMPLE,
  MEM_LOG_DIRTY_PAGES,
} from '@rxvmm/kvm';
import * as sys from '@rxvmm/sys';
import { describe, expect, it } from 'vitest';
import { openKvm } from './kvm.js';
import { mapGuestRam } from './memory.js';
import { kvmAvailable } from './test-support/availability.js';
import { processResources } from './test-support/leaks.js';
import { CODE_GPA, doorbellGuest64, STACK_GPA } from './test-support/tiny-guests.js';
import { setupLongMode } from './x86/long-mode.js';

const MiB = 1 << 20;

function eventfd(): { fd: number; [Symbol.dispose](): void } {
  const fd = sys.eventfd(0, sys.EFD_NONBLOCK | sys.EFD_CLOEXEC);
  return { fd, [Symbol.dispose]: () => sys.close(fd) };
}

describe.skipIf(!kvmAvailable)('LinuxVm memory regions', () => {
  it('allocates memfd-backed RAM whose fd shows the same bytes (for a vhost-user back-end)', () => {
    using kvm = openKvm();
    using vm = kvm.createVm();
    const region = vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0x10_0000n, size: 2 * MiB });
    expect(region).toMatchObject({
      slot: 0,
      guestPhysAddr: 0x10_0000n,
      size: 2 * MiB,
      flags: 0,
      fdOffset: 0,
    });
    expect(region?.fd).toBeGreaterThanOrEqual(0);
    expect(region?.bytes.length).toBe(2 * MiB);
    region?.bytes.set([1, 2, 3, 4], 4096);
    const read = Buffer.alloc(4);
    readSync(region?.fd ?? -1, read, 0, 4, 4096);
    expect([...read]).toEqual([1, 2, 3, 4]);
    // Another "thread's" view over the same mapping sees it too, with Atomics.
    const [other] = mapGuestRam(vm.describeMemory());
    expect(Atomics.load(new Uint32Array(other?.bytes.buffer ?? new ArrayBuffer(8)), 1024)).toBe(0x04030201);
    other?.dispose();
  });

  it('lists regions sorted by address, moves and re-flags a slot in place, deletes with size 0', () => {
    using kvm = openKvm();
    using vm = kvm.createVm();
    const high = vm.setMemoryRegion({ slot: 1, guestPhysAddr: 0x40_0000n, size: MiB });
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: MiB });
    expect(vm.memoryRegions().map((r) => r.slot)).toEqual([0, 1]);
    high?.bytes.set([0xaa], 0);
    const moved = vm.setMemoryRegion({
      slot: 1,
      guestPhysAddr: 0x80_0000n,
      size: MiB,
      flags: MEM_LOG_DIRTY_PAGES,
    });
    expect(moved).toMatchObject({ guestPhysAddr: 0x80_0000n, flags: MEM_LOG_DIRTY_PAGES, fd: high?.fd });
    expect(moved?.bytes[0]).toBe(0xaa); // same memory
    // The kernel rejects a new size for an existing slot.
    expect(() => vm.setMemoryRegion({ slot: 1, guestPhysAddr: 0x80_0000n, size: 2 * MiB })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(vm.setMemoryRegion({ slot: 1, guestPhysAddr: 0n, size: 0 })).toBeUndefined();
    expect(vm.memoryRegions().map((r) => r.slot)).toEqual([0]);
    // Views of a deleted region are detached (empty), never dangling.
    expect(moved?.bytes.length).toBe(0);
    expect(high?.fd).toBe(-1);
  });

  it('passes the kernel errors through: overlap EEXIST, unaligned EINVAL', () => {
    using kvm = openKvm();
    using vm = kvm.createVm();
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: MiB });
    expect(() => vm.setMemoryRegion({ slot: 1, guestPhysAddr: 0x8_0000n, size: MiB })).toThrow(
      expect.objectContaining({ code: 'EEXIST' }),
    );
    expect(() => vm.setMemoryRegion({ slot: 2, guestPhysAddr: 0x20_0000n, size: 1000 })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() => vm.setMemoryRegion({ slot: 2, guestPhysAddr: 0x20_0123n, size: 4096 })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(vm.memoryRegions()).toHaveLength(1);
  });
});

describe.skipIf(!kvmAvailable)('LinuxVm interrupt and eventfd ioctls', () => {
  it('an ioeventfd absorbs MMIO doorbells without exits; datamatch, EEXIST and deassign follow the kernel', () => {
    using kvm = openKvm();
    using vm = kvm.createVm();
    using efd = eventfd();
    const ram = vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: MiB });
    ram?.bytes.set(doorbellGuest64(10, 0xd000_0000n), Number(CODE_GPA));
    vm.ioeventfd({ addr: 0xd000_0000n, len: 4, fd: efd });
    expect(() => vm.ioeventfd({ addr: 0xd000_0000n, len: 4, fd: efd })).toThrow(
      expect.objectContaining({ code: 'EEXIST' }),
    );
    // The eventfd is read synchronously after the run: no event loop needed on this thread.
    using vcpu = vm.createVcpu(0, { mainThreadRun: 'allow' });
    setupLongMode(vm, vcpu, { entry: CODE_GPA, stack: STACK_GPA });
    const exit = vcpu.run();
    expect(exit).toMatchObject({ kind: 'io', port: 0x3f4 }); // DONE: the 10 doorbells never exited
    expect(sys.read8(efd.fd)).toBe(10n);
    vm.ioeventfd({ addr: 0xd000_0000n, len: 4, fd: efd, flags: IOEVENTFD_FLAG_DEASSIGN });
    expect(() =>
      vm.ioeventfd({ addr: 0xd000_0000n, len: 4, fd: efd, flags: IOEVENTFD_FLAG_DEASSIGN }),
    ).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    vm.ioeventfd({
      addr: 0x3f0n,
      len: 2,
      fd: efd,
      flags: IOEVENTFD_FLAG_PIO | IOEVENTFD_FLAG_DATAMATCH,
      datamatch: 7n,
    });
    expect(() => vm.ioeventfd({ addr: 0x3f0n, len: 3, fd: efd, flags: IOEVENTFD_FLAG_PIO })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() => vm.ioeventfd({ addr: 0x3f8n, len: 1, fd: 99999 })).toThrow(
      expect.objectContaining({ code: 'EBADF' }),
    );
  });

  it('irqfd (with RESAMPLE), GSI routing, IRQ line and MSI reach the kernel', () => {
    using kvm = openKvm();
    using vm = kvm.createVm();
    expect(() => vm.setIrqLine(4, true)).toThrow(expect.objectContaining({ code: 'ENXIO' }));
    vm.createIrqChip();
    expect(() => vm.createIrqChip()).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    using trigger = eventfd();
    using resample = eventfd();
    vm.irqfd({ fd: trigger, gsi: 5 });
    vm.irqfd({ fd: trigger, gsi: 5, flags: IRQFD_FLAG_DEASSIGN });
    vm.irqfd({ fd: trigger, gsi: 10, flags: IRQFD_FLAG_RESAMPLE, resamplefd: resample });
    expect(() => vm.irqfd({ fd: trigger, gsi: 11 })).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    vm.setIrqLine(4, true);
    vm.setIrqLine(4, false);
    vm.setGsiRouting([
      { gsi: 0, type: 'irqchip', irqchip: 2, pin: 2 },
      { gsi: 10, type: 'irqchip', irqchip: 2, pin: 10 },
      { gsi: 24, type: 'msi', addressLo: 0xfee0_0000, addressHi: 0, data: 0x30 },
    ]);
    expect(() => vm.setGsiRouting([{ gsi: 0, type: 'irqchip', irqchip: 7, pin: 0 }])).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() => vm.setGsiRouting([], 1)).toThrow(expect.objectContaining({ code: 'EINVAL' })); // routing flags
    expect(() => vm.setGsiRouting([{ gsi: 1, type: 99 }])).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    vm.setGsiRouting([{ gsi: 2, type: 1, irqchip: 2, pin: 2 }]); // raw type code 1 = irqchip
    using _vcpu = vm.createVcpu(0);
    // The APIC is software-disabled after reset: blocked (0).
    expect(vm.signalMsi({ addressLo: 0xfee0_0000, addressHi: 0, data: 0x30 })).toBe(0);
    expect(() => vm.irqfd({ fd: trigger, gsi: -1 })).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});

describe.skipIf(!kvmAvailable)('teardown', () => {
  it('releases every fd and mapping on close/dispose', () => {
    const before = processResources();
    for (let i = 0; i < 5; i++) {
      using kvm = openKvm();
      const vm = kvm.createVm();
      vm.createIrqChip();
      vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 2 * MiB });
      vm.setMemoryRegion({ slot: 1, guestPhysAddr: 0x100_0000n, size: MiB });
      vm.setMemoryRegion({ slot: 1, guestPhysAddr: 0n, size: 0 });
      vm.createVcpu(0);
      const vcpu = vm.createVcpu(1);
      vcpu.close();
      expect(processResources().fds.length).toBeGreaterThan(before.fds.length);
      // kvm disposal closes the VM, which closes its vCPU 0 and regions.
    }
    const after = processResources();
    expect(after.fds).toEqual(before.fds);
    expect(after.mappings).toEqual(before.mappings);
  });
});
