import { EventFd, nativeAvailable, SoftEventFd } from '@rxvmm/eventfd';
import { IRQFD_FLAG_RESAMPLE, MEM_READONLY, type VcpuExit } from '@rxvmm/kvm';
import { DONE_PORT, drive, REPORT_PORT } from '@rxvmm/kvm-contract';
import { describe, expect, it, vi } from 'vitest';
import { type GuestProgram, SoftKvm, type SoftVm } from './index.js';

const errno = (code: string) => expect.objectContaining({ code });
const tick = () => new Promise<void>((r) => setImmediate(r));

function vmWithRam(irqchip = true): SoftVm {
  const vm = new SoftKvm().createVm();
  vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 0x10_0000 });
  if (irqchip) vm.createIrqChip();
  return vm;
}

describe('SoftKvm memory regions (KVM_SET_USER_MEMORY_REGION rules)', () => {
  it('allocates SharedArrayBuffer-backed regions with fd -1, sorted; validates like KVM', () => {
    using vm = new SoftKvm().createVm();
    const hi = vm.setMemoryRegion({ slot: 1, guestPhysAddr: 0x10_0000n, size: 0x1000 });
    const lo = vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 0x2000 });
    expect(lo?.bytes.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(lo?.fd).toBe(-1);
    expect(vm.memoryRegions().map((r) => r.slot)).toEqual([0, 1]);
    expect(hi?.size).toBe(0x1000);
    expect(() => vm.setMemoryRegion({ slot: 2, guestPhysAddr: 0x1000n, size: 0x1000 })).toThrow(
      errno('EEXIST'),
    );
    expect(() => vm.setMemoryRegion({ slot: 2, guestPhysAddr: 0x20_0001n, size: 0x1000 })).toThrow(
      errno('EINVAL'),
    );
    expect(() => vm.setMemoryRegion({ slot: 2, guestPhysAddr: 0x20_0000n, size: 100 })).toThrow(
      errno('EINVAL'),
    );
    expect(() => vm.setMemoryRegion({ slot: 2, guestPhysAddr: 0x20_0000n, size: 0x1000, flags: 4 })).toThrow(
      errno('EINVAL'),
    );
    expect(() => vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 0x1000 })).toThrow(errno('EINVAL')); // size change
    lo?.bytes.set([1, 2, 3]);
    const moved = vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0x40_0000n, size: 0x2000 });
    expect([...(moved?.bytes.subarray(0, 3) ?? [])]).toEqual([1, 2, 3]);
    expect(vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 0 })).toBeUndefined();
    expect(vm.memoryRegions().map((r) => r.slot)).toEqual([1]);
  });

  it('without SharedArrayBuffer (a page that is not cross-origin isolated) slots are plain ArrayBuffers', () => {
    const shared = globalThis.SharedArrayBuffer;
    vi.stubGlobal('SharedArrayBuffer', undefined);
    try {
      using vm = new SoftKvm().createVm();
      const ram = vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 0x1000 });
      expect(ram?.bytes.buffer).toBeInstanceOf(ArrayBuffer);
      const vcpu = vm.createSoftVcpu(0);
      vcpu.load(function* (g) {
        g.writeU32(0x10n, 0x1234_5678);
        yield* g.pioOut(REPORT_PORT, 4, g.readU32(0x10n));
      });
      const exit = vcpu.run();
      expect(exit).toMatchObject({
        kind: 'io',
        port: REPORT_PORT,
        data: new Uint8Array([0x78, 0x56, 0x34, 0x12]),
      });
    } finally {
      vi.unstubAllGlobals();
    }
    expect(globalThis.SharedArrayBuffer).toBe(shared);
  });

  it('guest RAM accesses never exit; a write to a read-only slot is an MMIO exit', async () => {
    using vm = vmWithRam(false);
    const rom = vm.setMemoryRegion({ slot: 1, guestPhysAddr: 0x20_0000n, size: 0x1000, flags: MEM_READONLY });
    rom?.bytes.set([0xaa]);
    const vcpu = vm.createSoftVcpu(0);
    vcpu.load(function* (g) {
      g.writeU32(0x100n, 0xdeadbeef);
      yield* g.mmioWrite(0x104n, 4, 0x11223344);
      const a = yield* g.mmioRead(0x100n, 8);
      const b = yield* g.mmioRead(0x20_0000n, 1);
      yield* g.mmioWrite(0x20_0000n, 1, 0x55);
      yield* g.pioOut(REPORT_PORT, 4, a >> 32n);
      yield* g.pioOut(REPORT_PORT, 4, b);
      yield* g.pioOut(DONE_PORT, 1, 0);
    });
    const { exits, reports } = await drive(vcpu);
    expect(exits).toMatchObject([{ kind: 'mmio', isWrite: true, addr: 0x20_0000n, len: 1 }]);
    expect(reports).toEqual([0x11223344, 0xaa]);
    expect(rom?.bytes[0]).toBe(0xaa);
  });
});

describe('SoftVcpu run() and exits', () => {
  it('KVM_CREATE_VCPU / KVM_CREATE_IRQCHIP errno: duplicate id EEXIST, irqchip twice EEXIST, after vCPUs EINVAL', () => {
    using vm = vmWithRam(false);
    vm.createVcpu(0);
    expect(() => vm.createVcpu(0)).toThrow(errno('EEXIST'));
    expect(() => vm.createVcpu(-1)).toThrow(errno('EINVAL'));
    expect(() => vm.createIrqChip()).toThrow(errno('EINVAL'));
    using vm2 = vmWithRam(true);
    expect(() => vm2.createIrqChip()).toThrow(errno('EEXIST'));
  });

  it('registers are visible to the guest program and to the VMM', async () => {
    using vm = vmWithRam();
    const vcpu = vm.createSoftVcpu(0);
    vcpu.setRegs({ ...vcpu.getRegs(), rax: 41n });
    vcpu.load(function* (g) {
      g.regs.rbx = g.regs.rax + 1n;
      yield* g.pioOut(DONE_PORT, 1, 0);
    });
    await drive(vcpu);
    expect(vcpu.getRegs().rbx).toBe(42n);
    const sregs = vcpu.getSregs();
    vcpu.setSregs({ ...sregs, cr3: 0x1000n });
    expect(vcpu.getSregs().cr3).toBe(0x1000n);
  });

  it('kick() and immediateExit make run() return intr; a finished program is a shutdown; a throw is an internal error', () => {
    using vm = vmWithRam();
    const vcpu = vm.createSoftVcpu(0);
    expect(vcpu.run()).toEqual({ kind: 'internal-error', suberror: 1 }); // nothing loaded
    vcpu.load(function* (g) {
      yield* g.pioOut(0x80, 1, 1);
    });
    vcpu.kick();
    expect(vcpu.run()).toEqual({ kind: 'intr' });
    vcpu.immediateExit = true;
    expect(vcpu.run()).toEqual({ kind: 'intr' });
    vcpu.immediateExit = false;
    expect(vcpu.run()).toMatchObject({ kind: 'io', port: 0x80 });
    expect(vcpu.run()).toEqual({ kind: 'shutdown' });
    vcpu.load(function* (g) {
      yield* g.shutdown();
    });
    expect(vcpu.run()).toEqual({ kind: 'shutdown' });
    vcpu.load(function* (g) {
      g.readU32(0x1_0000_0000n); // not RAM
      yield* g.pioOut(0x80, 1, 1);
    });
    expect(vcpu.run()).toEqual({ kind: 'internal-error', suberror: 1 });
    expect(vcpu.lastError).toMatchObject({ code: 'EFAULT' });
    vcpu.close();
    expect(() => vcpu.run()).toThrow(errno('EBADF'));
  });

  it('hlt without interrupts pending: run() returns intr and whenRunnable() resolves on an interrupt', async () => {
    using vm = vmWithRam();
    const vcpu = vm.createSoftVcpu(0);
    vcpu.load(function* (g) {
      yield* g.enableApic();
      const vector = yield* g.waitForInterrupt();
      yield* g.eoi();
      yield* g.pioOut(REPORT_PORT, 4, vector);
    });
    expect(vcpu.run()).toEqual({ kind: 'intr' });
    expect(vcpu.halted).toBe(true);
    const runnable = vcpu.whenRunnable();
    expect(vm.signalMsi({ addressLo: 0xfee0_0000, addressHi: 0, data: 0x77 })).toBe(1);
    await runnable;
    const exit = vcpu.run() as Extract<VcpuExit, { kind: 'io' }>;
    expect(exit.data[0]).toBe(0x77);
  });

  it('the buses report accesses no device took (unhandled$), which are the exits', async () => {
    using vm = vmWithRam();
    const seen: bigint[] = [];
    vm.buses.mmio.unhandled$.subscribe((a) => seen.push(a.addr));
    const vcpu = vm.createSoftVcpu(0);
    vcpu.load(function* (g) {
      yield* g.mmioWrite(0xd000_0000n, 4, 1);
      yield* g.mmioRead(0xfec0_0010n, 4); // the IOAPIC takes this one
      yield* g.pioOut(DONE_PORT, 1, 0);
    });
    const { exits } = await drive(vcpu);
    expect(exits).toHaveLength(1);
    expect(seen).toEqual([0xd000_0000n]);
  });
});

describe('SoftKvm interrupt controller', () => {
  const waiter = (count: number, setup: GuestProgram): GuestProgram =>
    function* (g) {
      let taken = 0;
      g.setInterruptHandler(function* (v) {
        yield* g.pioOut(REPORT_PORT, 4, v);
        yield* g.eoi();
        taken++;
      });
      yield* setup(g);
      while (true) {
        g.cli();
        if (taken >= count) break;
        yield* g.waitForInterrupt();
      }
      yield* g.pioOut(DONE_PORT, 1, 0);
    };

  it('§4 signals before the injection runs coalesce into exactly one interrupt (probe MSI comes second)', async () => {
    using vm = vmWithRam();
    vm.setGsiRouting([{ gsi: 40, type: 'msi', addressLo: 0xfee0_0000, addressHi: 0, data: 0x60 }]);
    using e = new SoftEventFd();
    vm.irqfd({ fd: e, gsi: 40 });
    const vcpu = vm.createSoftVcpu(0);
    vcpu.load(
      waiter(2, function* (g) {
        yield* g.enableApic({ maskLint0: true });
      }),
    );
    expect(vcpu.run()).toEqual({ kind: 'intr' }); // asleep
    e.write(1n);
    e.write(1n);
    e.write(1n);
    await tick();
    vm.signalMsi({ addressLo: 0xfee0_0000, addressHi: 0, data: 0x30 });
    const { reports } = await drive(vcpu);
    expect(reports).toEqual([0x60, 0x30]);
    expect(vm.irqfds.list()[0]?.injections).toBe(1);
  });

  it('§4 closing the eventfd detaches the irqfd; a resampling one de-asserts its line', async () => {
    using vm = vmWithRam();
    const e = new SoftEventFd();
    using r = new SoftEventFd();
    vm.irqfd({ fd: e, gsi: 9, flags: IRQFD_FLAG_RESAMPLE, resamplefd: r });
    e.write(1n);
    await tick();
    e.close();
    expect(vm.irqfds.list()).toHaveLength(0);
    const vcpu = vm.createSoftVcpu(0);
    vcpu.load(
      waiter(1, function* (g) {
        yield* g.enableApic({ maskLint0: true });
        yield* g.ioapicRoute(9, { vector: 0x70, level: true });
      }),
    );
    expect(vcpu.run()).toEqual({ kind: 'intr' }); // nothing pending: the line went down
    vm.signalMsi({ addressLo: 0xfee0_0000, addressHi: 0, data: 0x31 });
    expect((await drive(vcpu)).reports).toEqual([0x31]);
  });

  it('8259 path: default route GSI 3 -> PIC master pin 3 -> ExtINT on the BSP; PIC EOI runs the resampler', async () => {
    using vm = vmWithRam();
    using e = new SoftEventFd();
    using r = new SoftEventFd({ nonblock: true });
    vm.setGsiRouting([{ gsi: 3, type: 'irqchip', irqchip: 0, pin: 3 }]);
    vm.irqfd({ fd: e, gsi: 3, flags: IRQFD_FLAG_RESAMPLE, resamplefd: r });
    const vcpu = vm.createSoftVcpu(0);
    vcpu.load(function* (g) {
      yield* g.picInit(0x20, 0x28, { master: 0xf7 }); // unmask pin 3 only
      yield* g.pioOut(0x4d0, 1, 0x08); // ELCR: pin 3 level-triggered
      const vector = yield* g.waitForInterrupt();
      yield* g.picEoi();
      yield* g.pioOut(REPORT_PORT, 4, vector);
      yield* g.pioOut(DONE_PORT, 1, 0);
    });
    expect(vcpu.run()).toEqual({ kind: 'intr' });
    e.write(1n);
    const { reports, exits } = await drive(vcpu);
    expect(exits).toEqual([]); // PIC ports are in-kernel devices
    expect(reports).toEqual([0x23]);
    expect(r.read()).toBe(1n);
  });

  it('IOAPIC registers read back through MMIO (version, redirection entries)', async () => {
    using vm = vmWithRam();
    const vcpu = vm.createSoftVcpu(0);
    vcpu.load(function* (g) {
      yield* g.mmioWrite(0xfec0_0000n, 4, 0x01);
      yield* g.pioOut(REPORT_PORT, 4, yield* g.mmioRead(0xfec0_0010n, 4));
      yield* g.ioapicRoute(4, { vector: 0x99, level: true, dest: 3 });
      yield* g.mmioWrite(0xfec0_0000n, 4, 0x18);
      yield* g.pioOut(REPORT_PORT, 4, yield* g.mmioRead(0xfec0_0010n, 4));
      yield* g.mmioWrite(0xfec0_0000n, 4, 0x19);
      yield* g.pioOut(REPORT_PORT, 4, yield* g.mmioRead(0xfec0_0010n, 4));
      yield* g.pioOut(REPORT_PORT, 4, yield* g.mmioRead(0xfee0_0020n, 4)); // LAPIC ID
      yield* g.pioOut(DONE_PORT, 1, 0);
    });
    expect((await drive(vcpu)).reports).toEqual([0x170020, 0x8099, 0x0300_0000, 0]);
  });
});

describe('SoftKvm fd validation and teardown', () => {
  if (!nativeAvailable)
    console.warn('skipping the kernel EventFd case: @rxvmm/sys (native addon) did not load');
  it.skipIf(!nativeAvailable)('a kernel EventFd is an open fd that is not a soft eventfd: EINVAL', () => {
    using vm = vmWithRam();
    using kernel = new EventFd();
    expect(() => vm.ioeventfd({ addr: 0xd000_0000n, len: 4, fd: kernel })).toThrow(errno('EINVAL'));
    expect(() => vm.irqfd({ fd: kernel, gsi: 5 })).toThrow(errno('EINVAL'));
  });

  it('closing the VM releases vCPUs, ioeventfds, irqfds, bus devices and memory', () => {
    const kvm = new SoftKvm();
    const vm = kvm.createVm();
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 0x1000 });
    vm.createIrqChip();
    using e = new SoftEventFd();
    using c = new SoftEventFd();
    vm.ioeventfd({ addr: 0xd000_0000n, len: 0, fd: e });
    vm.irqfd({ fd: c, gsi: 5 });
    const vcpu = vm.createVcpu(0);
    vm.close();
    expect(vm.buses.mmio.size + vm.buses.fastMmio.size + vm.buses.pio.size).toBe(0);
    expect(vm.irqfds.list()).toHaveLength(0);
    expect(vm.ioeventfds.count).toBe(0);
    expect(vm.memoryRegions()).toHaveLength(0);
    expect(() => vcpu.run()).toThrow(errno('EBADF'));
    expect(() => vm.createVcpu(1)).toThrow(errno('EBADF'));
    c.write(1n); // no irqfd consumes it any more
    expect(c.read()).toBe(1n);
    kvm.close();
    expect(() => kvm.createVm()).toThrow(errno('EBADF'));
  });
});
