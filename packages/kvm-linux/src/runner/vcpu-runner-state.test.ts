import { describe, expect, it } from 'vitest';
import { openKvm } from '../kvm.js';
import { kvmAvailable } from '../test-support/availability.js';
import { CODE_GPA, STACK_GPA } from '../test-support/tiny-guests.js';
import { VcpuRunner } from './vcpu-runner.js';

const handler = new URL('./fixtures/state-handler.mjs', import.meta.url);
/** 64-bit: inc rax; jmp back: counts for as long as it runs. */
const COUNTER_GUEST_64 = new Uint8Array([0x48, 0xff, 0xc0, 0xeb, 0xfb]);
const data = { entry: CODE_GPA, stack: STACK_GPA };
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe.skipIf(!kvmAvailable)('VcpuRunner: stop({ saveState }) and start({ restoreState })', () => {
  it('takes the vCPU state in the worker as it stops; a runner on a restored VM continues from it', async () => {
    using kvm = openKvm();
    const vm = kvm.createVm();
    vm.createIrqChip();
    const ram = vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 1 << 20 })!;
    ram.bytes.set(COUNTER_GUEST_64, Number(CODE_GPA));
    const runner = await VcpuRunner.start({ vm, id: 0, handler, data });
    await sleep(100);
    const result = await runner.stop({ saveState: true });
    expect(result.reason).toBe('stop-requested');
    expect(result.stateError).toBeUndefined();
    const state = JSON.parse(JSON.stringify(result.state));
    const counted = BigInt(state.regs.rax);
    expect(counted).toBeGreaterThan(1000n);
    expect(BigInt(state.regs.rip) - CODE_GPA).toBeLessThan(5n);
    expect(state.msrs.length).toBeGreaterThan(10);
    const wiring = vm.wiring();
    const saved = { vm: vm.state(), ram: ram.bytes.slice() };
    vm.close();
    await vm.whenReleased();

    const vm2 = kvm.createVm();
    vm2.restoreWiring(wiring, () => undefined);
    vm2.memoryRegions()[0]!.bytes.set(saved.ram);
    vm2.restoreState(saved.vm);
    const again = await VcpuRunner.start({ vm: vm2, id: 0, handler, data, restoreState: state });
    const second = await again.stop({ saveState: true });
    // The handler's setup entered long mode at the entry with rax 0; the restored state won.
    expect(BigInt(second.state!.regs.rax)).toBeGreaterThanOrEqual(counted);
    vm2.close();
    await vm2.whenReleased();
  });

  it('pause() parks the vCPU (it runs nothing until resume()); saveState() works only while paused', async () => {
    using kvm = openKvm();
    const vm = kvm.createVm();
    vm.createIrqChip();
    const ram = vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 1 << 20 })!;
    ram.bytes.set(COUNTER_GUEST_64, Number(CODE_GPA));
    const runner = await VcpuRunner.start({ vm, id: 0, handler, data });
    await expect(runner.saveState()).rejects.toMatchObject({ code: 'EBUSY' });
    await runner.pause();
    const first = await runner.saveState();
    await sleep(30);
    const second = await runner.saveState();
    expect(second.regs.rax).toBe(first.regs.rax); // parked: not one instruction ran
    // Resumed, it runs again: wait for the worker to have taken it back into KVM_RUN (on a loaded
    // machine that can take longer than any fixed delay), then park it once more.
    let third = second;
    for (let attempt = 0; attempt < 100 && BigInt(third.regs.rax) <= BigInt(second.regs.rax); attempt++) {
      runner.resume();
      await sleep(30);
      await runner.pause();
      third = await runner.saveState();
    }
    expect(BigInt(third.regs.rax)).toBeGreaterThan(BigInt(second.regs.rax));
    // stop() also ends a paused run, and may take the state on the way out.
    const result = await runner.stop({ saveState: true });
    expect(result.reason).toBe('stop-requested');
    expect(result.state?.regs.rax).toBe(third.regs.rax);
    await expect(runner.saveState()).rejects.toMatchObject({ code: 'EBADF' });
    vm.close();
    await vm.whenReleased();
  });

  it('a state the kernel or the checks refuse fails the start (EINVAL), with no worker left', async () => {
    using kvm = openKvm();
    const vm = kvm.createVm();
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 1 << 20 });
    const runner = VcpuRunner.start({
      vm,
      id: 0,
      handler,
      data,
      restoreState: { version: 1, id: 0 } as never,
    });
    await expect(runner).rejects.toMatchObject({ code: 'EINVAL' });
    vm.close();
    await vm.whenReleased();
  });
});
