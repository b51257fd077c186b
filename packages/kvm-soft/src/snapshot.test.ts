import type { VcpuExit } from '@rxvmm/kvm';
import { describe, expect, it } from 'vitest';
import { type GuestProgram, SoftKvm, type SoftVcpu, type SoftVm } from './index.js';
import type { SoftVcpuState, SoftVmState } from './state.js';

const viaJson = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
const errno = (code: string) => expect.objectContaining({ code });
const REPORT = 0x3f0;

/** Runs until shutdown, collecting the bytes the guest writes to REPORT. */
async function runToEnd(vcpu: SoftVcpu): Promise<number[]> {
  const reports: number[] = [];
  for (;;) {
    const exit: VcpuExit = vcpu.run();
    if (exit.kind === 'shutdown') return reports;
    if (exit.kind === 'intr') await vcpu.whenRunnable();
    else if (exit.kind === 'io' && exit.port === REPORT) reports.push(exit.data[0]!);
    else throw new Error(`unexpected exit ${JSON.stringify(exit)}`);
  }
}

/** A guest that programmed its APIC and IOAPIC and ended; then two interrupts were signalled and not taken. */
async function pendingInterrupts(): Promise<{ vm: SoftVm; vcpu: SoftVcpu }> {
  const vm = new SoftKvm().createVm();
  vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 0x10_0000 });
  vm.createIrqChip();
  const vcpu = vm.createSoftVcpu(0);
  vcpu.setRegs({ ...vcpu.getRegs(), rax: 0x1234_5678_9abc_def0n, rip: 0xffff_fff0n });
  vcpu.load(function* (g) {
    yield* g.enableApic({ maskLint0: true });
    yield* g.picInit(0x20, 0x28);
    yield* g.ioapicRoute(5, { vector: 0x45, level: true });
  });
  expect(await runToEnd(vcpu)).toEqual([]);
  expect(vm.signalMsi({ addressLo: 0xfee0_0000, addressHi: 0, data: 0x50 })).toBe(1);
  vm.setIrqLine(5, true); // level: IOAPIC pin 5 -> vector 0x45, remote IRR set until EOI
  return { vm, vcpu };
}

/** Takes both pending interrupts in priority order, EOI-ing each. */
const takeTwo: GuestProgram = function* (g) {
  for (let i = 0; i < 2; i++) {
    const vector = yield* g.waitForInterrupt();
    yield* g.pioOut(REPORT, 1, vector);
    yield* g.eoi();
  }
};

function restore(saved: { wiring: unknown; vm: SoftVmState; vcpu: SoftVcpuState }) {
  const vm = new SoftKvm().createVm();
  vm.restoreWiring(saved.wiring as never, () => undefined);
  vm.restoreState(saved.vm);
  const vcpu = vm.createSoftVcpu(0);
  vcpu.restoreState(saved.vcpu);
  return { vm, vcpu };
}

describe('SoftKvm snapshots: everything but a running guest program', () => {
  it('a vCPU running a TypeScript guest program: one clear ENOTSUP', async () => {
    const vm = new SoftKvm().createVm();
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 0x1000 });
    vm.createIrqChip();
    const vcpu = vm.createSoftVcpu(0);
    vcpu.load(function* (g) {
      yield* g.waitForInterrupt();
    });
    expect(vcpu.run()).toEqual({ kind: 'intr' }); // asleep in hlt
    expect(() => vcpu.state()).toThrow(errno('ENOTSUP'));
    expect(() => vcpu.state()).toThrow(/TypeScript guest program.*cannot be saved/);
    expect(vm.state().version).toBe(1); // the VM itself is savable
  });

  it('round-trips: wiring, VM and vCPU state → JSON → a fresh VM → the same values', async () => {
    const { vm, vcpu } = await pendingInterrupts();
    const saved = viaJson({ wiring: vm.wiring(), vm: vm.state(), vcpu: vcpu.state() });
    expect(saved.vcpu).toMatchObject({
      id: 0,
      program: 'finished',
      regs: { rax: String(0x1234_5678_9abc_def0n) },
    });
    expect(saved.vcpu.lapic!.irr).toEqual([0x45, 0x50]);
    const restored = restore(saved);
    expect(
      viaJson({ wiring: restored.vm.wiring(), vm: restored.vm.state(), vcpu: restored.vcpu.state() }),
    ).toEqual(saved);
  });

  it('interrupts signalled and not yet taken survive: the restored guest takes them as the original does', async () => {
    const original = await pendingInterrupts();
    const saved = viaJson({
      wiring: original.vm.wiring(),
      vm: original.vm.state(),
      vcpu: original.vcpu.state(),
    });
    const restored = restore(saved);
    original.vcpu.load(takeTwo);
    restored.vcpu.load(takeTwo);
    const seen = await runToEnd(original.vcpu);
    expect(seen).toEqual([0x50, 0x45]);
    expect(await runToEnd(restored.vcpu)).toEqual(seen);
    // The level line is still asserted: after the EOI the IOAPIC delivered it again, in both.
    expect(restored.vm.state()).toEqual(original.vm.state());
    expect(restored.vcpu.state()).toEqual(original.vcpu.state());
  });

  it('a hostile or mismatched state: EINVAL, nothing loaded', async () => {
    const { vm, vcpu } = await pendingInterrupts();
    const saved = viaJson({ wiring: vm.wiring(), vm: vm.state(), vcpu: vcpu.state() });
    const target = new SoftKvm().createVm();
    target.restoreWiring(saved.wiring as never, () => undefined);
    const before = target.state();
    const badVm: unknown[] = [
      { ...saved.vm, version: 2 },
      { ...saved.vm, irqchip: null },
      {
        ...saved.vm,
        irqchip: { ...saved.vm.irqchip!, ioapic: { ...saved.vm.irqchip!.ioapic, redirtbl: [] } },
      },
      { ...saved.vm, irqchip: { ...saved.vm.irqchip!, pic: { ...saved.vm.irqchip!.pic, sources: ['x'] } } },
    ];
    for (const s of badVm) expect(() => target.restoreState(s as SoftVmState)).toThrow(errno('EINVAL'));
    expect(target.state()).toEqual(before);
    const v = target.createSoftVcpu(0);
    const fresh = v.state();
    const badVcpu: unknown[] = [
      { ...saved.vcpu, id: 1 },
      { ...saved.vcpu, regs: { ...saved.vcpu.regs, rip: '-1' } },
      { ...saved.vcpu, sregs: { ...saved.vcpu.sregs, cs: { ...saved.vcpu.sregs.cs, dpl: 256 } } },
      { ...saved.vcpu, lapic: { ...saved.vcpu.lapic!, irr: [300] } },
      { ...saved.vcpu, lapic: null },
      { ...saved.vcpu, program: 'running' },
    ];
    for (const s of badVcpu) expect(() => v.restoreState(s as SoftVcpuState)).toThrow(errno('EINVAL'));
    expect(v.state()).toEqual(fresh);
  });
});
