/**
 * Snapshots on /dev/kvm: a guest stopped at a moment where an interrupt was
 * signalled and not yet taken is saved (wiring, VM state, vCPU state, RAM),
 * restored into a fresh VM and vCPU, and goes on to take that interrupt.
 */
import { drive } from '@rxvmm/kvm-contract';
import { afterEach, describe, expect, it } from 'vitest';
import { kvmAvailability, type LinuxKvm, type LinuxVcpu, type LinuxVm, openKvm } from '../src/index.js';
import type { LinuxVcpuState } from '../src/vcpu-state.js';
import type { LinuxVmState } from '../src/vm-state.js';
import { LAYOUT, startGuest } from './guests.js';

const available = kvmAvailability();
const viaJson = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
const errno = (code: string) => expect.objectContaining({ code });
const RAM = 0x40_0000;
/** MSRs that count time (TSC, TSC adjust, TSC deadline): they move between two reads. */
const TIME_MSRS = new Set([0x10, 0x3b, 0x6e0]);

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const fn of cleanups.splice(0).reverse()) fn();
});

function newVm(kvm: LinuxKvm): LinuxVm {
  const vm = kvm.createVm();
  cleanups.push(() => vm.close());
  return vm;
}
function newVcpu(vm: LinuxVm, id = 0): LinuxVcpu {
  const vcpu = vm.createVcpu(id, { mainThreadRun: 'allow' });
  cleanups.push(() => vcpu.close());
  return vcpu;
}

interface Saved {
  wiring: ReturnType<LinuxVm['wiring']>;
  vm: LinuxVmState;
  vcpu: LinuxVcpuState;
  ram: Uint8Array;
}

function restore(kvm: LinuxKvm, saved: Saved): { vm: LinuxVm; vcpu: LinuxVcpu } {
  const vm = newVm(kvm);
  vm.restoreWiring(saved.wiring, () => undefined);
  vm.memoryRegions()[0]!.bytes.set(saved.ram);
  vm.restoreState(saved.vm);
  const vcpu = newVcpu(vm);
  vcpu.restoreState(saved.vcpu);
  return { vm, vcpu };
}

/** Runs the guest to the READY report (an io exit on the report port with READY_REPORT). */
function runToReady(vcpu: LinuxVcpu): void {
  for (;;) {
    const exit = vcpu.run();
    if (exit.kind === 'io' && exit.port === LAYOUT.reportPort) {
      const value = new DataView(exit.data.buffer, exit.data.byteOffset).getUint32(0, true);
      if (value === LAYOUT.readyReport) return;
      throw new Error(`report ${value} before READY`);
    }
    if (exit.kind !== 'intr') throw new Error(`unexpected exit ${exit.kind}`);
  }
}

function save(kvm: LinuxKvm, vm: LinuxVm, vcpu: LinuxVcpu): Saved {
  return viaJson({
    wiring: vm.wiring(),
    vm: vm.state(),
    vcpu: vcpu.state(kvm.msrIndexList()),
    ram: [] as never,
  }) as Saved & { ram: Uint8Array };
}

/** The state without what moves by itself between two reads (time). */
function timeless(state: LinuxVcpuState) {
  return { ...state, msrs: state.msrs.filter((m) => !TIME_MSRS.has(m.index)) };
}

describe.skipIf(!available.available)('snapshots on /dev/kvm', () => {
  it('KVM_GET_MSR_INDEX_LIST lists the saveable MSRs (EFER, STAR, LSTAR, TSC among them)', () => {
    using kvm = openKvm();
    const list = kvm.msrIndexList();
    expect(list.length).toBeGreaterThan(10);
    for (const msr of [0x10, 0xc000_0081, 0xc000_0082]) expect(list).toContain(msr);
  });

  it('round-trips: vCPU and VM state → JSON → a fresh VM and vCPU → the same values (time aside)', () => {
    using kvm = openKvm();
    const vm = newVm(kvm);
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: RAM });
    vm.createIrqChip();
    vm.setGsiRouting([{ gsi: 24, type: 'msi', addressLo: 0xfee0_0000, addressHi: 0, data: 0x41 }]);
    const vcpu = newVcpu(vm);
    startGuest(vm, vcpu, 'interrupt-waiter', { count: 1, vector: 0x41, ready: true });
    runToReady(vcpu);
    expect(vm.signalMsi({ addressLo: 0xfee0_0000, addressHi: 0, data: 0x41 })).toBe(1);
    const saved = save(kvm, vm, vcpu);
    saved.ram = vm.memoryRegions()[0]!.bytes.slice();
    expect(saved.vcpu.msrs.length).toBeGreaterThan(10);
    expect(saved.vcpu.fpu.kind).toBe('xsave');
    expect(saved.vm.irqchip).not.toBeNull();
    const restored = restore(kvm, saved);
    const again = viaJson({ vm: restored.vm.state(), vcpu: restored.vcpu.state(kvm.msrIndexList()) });
    expect(timeless(again.vcpu)).toEqual(timeless(saved.vcpu));
    expect(again.vm.irqchip).toEqual(saved.vm.irqchip);
    expect(BigInt(again.vm.clock!.clock)).toBeGreaterThanOrEqual(BigInt(saved.vm.clock!.clock));
  });

  it('an interrupt signalled and not yet taken survives: the restored guest takes it, the original too', async () => {
    using kvm = openKvm();
    const vm = newVm(kvm);
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: RAM });
    vm.createIrqChip();
    const vcpu = newVcpu(vm);
    startGuest(vm, vcpu, 'interrupt-waiter', { count: 1, vector: 0x41, ready: true });
    runToReady(vcpu);
    // Signalled while the vCPU is out of KVM_RUN: it sits in the local APIC's IRR.
    expect(vm.signalMsi({ addressLo: 0xfee0_0000, addressHi: 0, data: 0x41 })).toBe(1);
    const saved = save(kvm, vm, vcpu);
    saved.ram = vm.memoryRegions()[0]!.bytes.slice();
    const restored = restore(kvm, saved);
    const after = await drive(restored.vcpu);
    expect(after.reports).toEqual([0x41]);
    expect((await drive(vcpu)).reports).toEqual([0x41]);
  });

  it('a hostile vCPU or VM state: EINVAL before any ioctl', () => {
    using kvm = openKvm();
    const vm = newVm(kvm);
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: RAM });
    vm.createIrqChip();
    const vcpu = newVcpu(vm);
    startGuest(vm, vcpu, 'interrupt-waiter', { count: 1, vector: 0x41, ready: true });
    const saved = save(kvm, vm, vcpu);
    const target = newVm(kvm);
    target.restoreWiring(saved.wiring, () => undefined);
    const fresh = newVcpu(target);
    const before = fresh.state(kvm.msrIndexList());
    const badVcpu: unknown[] = [
      { ...saved.vcpu, version: 2 },
      { ...saved.vcpu, id: 3 },
      { ...saved.vcpu, regs: { ...saved.vcpu.regs, rip: 17 } },
      { ...saved.vcpu, fpu: { kind: 'xsave', bytes: 'not base64!' } },
      { ...saved.vcpu, fpu: { kind: 'xsave', bytes: 'AAAA' } },
      { ...saved.vcpu, lapic: Buffer.alloc(1023).toString('base64') },
      { ...saved.vcpu, msrs: [{ index: -1, value: '0' }] },
      { ...saved.vcpu, mpState: 99 },
    ];
    for (const s of badVcpu) expect(() => fresh.restoreState(s as LinuxVcpuState)).toThrow(errno('EINVAL'));
    expect(timeless(fresh.state(kvm.msrIndexList()))).toEqual(timeless(before));
    const badVm: unknown[] = [
      { ...saved.vm, version: 0 },
      { ...saved.vm, irqchip: null },
      { ...saved.vm, irqchip: { ...saved.vm.irqchip!, ioapic: 'AAAA' } },
      { ...saved.vm, clock: { clock: '-5', flags: 0 } },
    ];
    for (const s of badVm) expect(() => target.restoreState(s as LinuxVmState)).toThrow(errno('EINVAL'));
  });
});
