import { describe, expect, it } from 'vitest';
import { openKvm } from './kvm.js';
import { kvmAvailable } from './test-support/availability.js';
import { processResources } from './test-support/leaks.js';
import {
  CODE_GPA,
  ECHO_GUEST_64,
  MMIO_GPA,
  REAL_MODE_GUEST,
  SPIN_GUEST_64,
  STACK_GPA,
} from './test-support/tiny-guests.js';
import { LinuxVcpu } from './vcpu.js';
import { setupLongMode } from './x86/long-mode.js';
import { setupRealMode } from './x86/real-mode.js';

function vmWith(code: Uint8Array) {
  const kvm = openKvm();
  const vm = kvm.createVm();
  vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 1 << 20 })?.bytes.set(code, Number(CODE_GPA));
  return { kvm, vm, [Symbol.dispose]: () => kvm.close() };
}

const u32 = (data: Uint8Array) =>
  new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0, true);

describe.skipIf(!kvmAvailable)('LinuxVcpu on /dev/kvm', () => {
  it('hands over between runs: the adopter sees the pending exit, answers it, and owns the fd and kvm_run', () => {
    const before = processResources();
    {
      using env = vmWith(ECHO_GUEST_64);
      const first = env.vm.createVcpu(0);
      setupLongMode(env.vm, first, { entry: CODE_GPA, stack: STACK_GPA });
      expect(first.run()).toMatchObject({ kind: 'io', direction: 'in', port: 0x3f0 });
      const handover = first.handOver();
      expect(first.closed).toBe(true);
      expect(() => first.getRegs()).toThrow(expect.objectContaining({ code: 'EBADF' }));
      first.close(); // a no-op: the vCPU is the adopter's now
      using adopted = LinuxVcpu.adopt(env.vm.fd, handover);
      expect(adopted.fd).toBe(handover.fd);
      const pending = adopted.exit();
      expect(pending).toMatchObject({ kind: 'io', direction: 'in', port: 0x3f0 });
      if (pending.kind !== 'io') throw new Error('unreachable');
      new DataView(pending.data.buffer, pending.data.byteOffset, 4).setUint32(0, 0xabcd, true);
      const out = adopted.run();
      expect(out).toMatchObject({ kind: 'io', direction: 'out', port: 0x3f0 });
      if (out.kind === 'io') expect(u32(out.data)).toBe(0xabcd);
    }
    expect(processResources()).toMatchObject({ fds: before.fds, mappings: before.mappings });
  });

  it('round-trips general and special registers', () => {
    using env = vmWith(SPIN_GUEST_64);
    using vcpu = env.vm.createVcpu(0);
    const regs = vcpu.getRegs();
    expect(regs.rip).toBe(0xfff0n); // reset vector offset
    vcpu.setRegs({ ...regs, rax: 0x1122_3344_5566_7788n, r15: 0xffff_ffff_ffff_ffffn, rflags: 0x2n });
    expect(vcpu.getRegs()).toMatchObject({ rax: 0x1122_3344_5566_7788n, r15: 0xffff_ffff_ffff_ffffn });
    const sregs = vcpu.getSregs();
    expect(sregs.cs.selector).toBe(0xf000);
    vcpu.setSregs({ ...sregs, cr2: 0x1234n, idt: { base: 0x1000n, limit: 0xfff } });
    expect(vcpu.getSregs()).toMatchObject({ cr2: 0x1234n, idt: { base: 0x1000n, limit: 0xfff } });
    expect(() => vcpu.setRegs({ ...regs, rax: -1n })).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('runs a real-mode guest: out exit with its data read in place, then hlt (no irqchip)', () => {
    using env = vmWith(REAL_MODE_GUEST);
    using vcpu = env.vm.createVcpu(0);
    setupRealMode(vcpu, { entry: CODE_GPA, stack: 0x7000n });
    expect(vcpu.getSregs().cs.base).toBe(0x10000n);
    const out = vcpu.run();
    expect(out).toMatchObject({ kind: 'io', direction: 'out', port: 0x3f0, size: 2, count: 1 });
    expect(out.kind === 'io' && [...out.data]).toEqual([0x34, 0x12]);
    expect(vcpu.run()).toEqual({ kind: 'hlt' });
  });

  it('runs a long-mode guest: answers to in and MMIO read written into exit.data reach the guest', () => {
    using env = vmWith(ECHO_GUEST_64);
    using vcpu = env.vm.createVcpu(0);
    setupLongMode(env.vm, vcpu, { entry: CODE_GPA, stack: STACK_GPA });
    const sregs = vcpu.getSregs();
    expect(sregs.efer & 0x500n).toBe(0x500n);
    const inExit = vcpu.run();
    expect(inExit).toMatchObject({ kind: 'io', direction: 'in', port: 0x3f0, size: 4 });
    if (inExit.kind !== 'io') throw new Error('expected io');
    new DataView(inExit.data.buffer, inExit.data.byteOffset).setUint32(0, 0xcafe_f00d, true);
    const echoed = vcpu.run();
    expect(echoed.kind === 'io' && u32(echoed.data)).toBe(0xcafe_f00d);
    const read = vcpu.run();
    expect(read).toMatchObject({ kind: 'mmio', isWrite: false, addr: MMIO_GPA, len: 4 });
    if (read.kind !== 'mmio') throw new Error('expected mmio');
    read.data.set([0x0d, 0xd0, 0xfe, 0xca].reverse());
    const echoed2 = vcpu.run();
    expect(echoed2.kind === 'io' && u32(echoed2.data)).toBe(0x0dd0feca);
    const write = vcpu.run();
    expect(write).toMatchObject({ kind: 'mmio', isWrite: true, addr: MMIO_GPA, len: 4 });
    expect(write.kind === 'mmio' && u32(write.data)).toBe(0x0dd0feca);
    expect(vcpu.run()).toMatchObject({ kind: 'io', port: 0x3f4 });
    expect(vcpu.run()).toEqual({ kind: 'hlt' });
    expect(vcpu.getRegs().rip).toBe(CODE_GPA + BigInt(ECHO_GUEST_64.length));
  });

  it('kick() on its own thread makes the next run return intr once; whenRunnable resolves', async () => {
    using env = vmWith(SPIN_GUEST_64);
    using vcpu = env.vm.createVcpu(0);
    setupLongMode(env.vm, vcpu, { entry: CODE_GPA, stack: STACK_GPA });
    vcpu.kick();
    expect(vcpu.run()).toEqual({ kind: 'intr' });
    await vcpu.whenRunnable();
    vcpu.kick();
    expect(vcpu.run()).toEqual({ kind: 'intr' });
  });

  it('reports shutdown (triple fault) and refuses calls after close (EBADF)', () => {
    using env = vmWith(new Uint8Array([0x0f, 0x0b])); // ud2 with no IDT: triple fault
    const vcpu = env.vm.createVcpu(0);
    setupLongMode(env.vm, vcpu, { entry: CODE_GPA, stack: STACK_GPA });
    expect(vcpu.run()).toEqual({ kind: 'shutdown' });
    vcpu.close();
    vcpu.close();
    expect(() => vcpu.run()).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(() => vcpu.getRegs()).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('creating the same vCPU id twice is EEXIST', () => {
    using env = vmWith(SPIN_GUEST_64);
    using _a = env.vm.createVcpu(3);
    expect(() => env.vm.createVcpu(3)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
  });
});
