import { isMainThread } from 'node:worker_threads';
import type { VcpuExit } from '@rxvmm/kvm';
import { describe, expect, it } from 'vitest';
import { openKvm } from '../kvm.js';
import { kvmAvailable } from '../test-support/availability.js';
import { processResources, settledThreads } from '../test-support/leaks.js';
import { CODE_GPA, ECHO_GUEST_64, SPIN_GUEST_64, STACK_GPA } from '../test-support/tiny-guests.js';
import type { LinuxVcpu } from '../vcpu.js';
import type { LinuxVm } from '../vm.js';
import { setupLongMode } from '../x86/long-mode.js';
import type { EarlyRun } from './early-run.js';
import { VcpuRunner } from './vcpu-runner.js';

const echoHandler = new URL('./fixtures/echo-handler.mjs', import.meta.url);
const data = { entry: CODE_GPA, stack: STACK_GPA, answer: 0x1234_5678, registersSet: true };

function vmWithCode(code: Uint8Array) {
  const kvm = openKvm();
  const vm = kvm.createVm();
  const ram = vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 1 << 20 });
  ram?.bytes.set(code, Number(CODE_GPA));
  vm.createIrqChip();
  return { kvm, vm };
}

async function closeAll(kvm: { close(): void }, vm: LinuxVm): Promise<void> {
  vm.close();
  await vm.whenReleased();
  kvm.close();
}

/** Enters long mode at the entry on this thread; records (and answers or declines) what exits here. */
function recordingEarlyRun(vm: LinuxVm, answerIn: boolean) {
  const seen: { kind: VcpuExit['kind']; port?: number; mainThread: boolean }[] = [];
  const early: EarlyRun = {
    setup(vcpu: LinuxVcpu) {
      setupLongMode(vm, vcpu, { entry: CODE_GPA, stack: STACK_GPA });
    },
    onExit(exit) {
      seen.push({
        kind: exit.kind,
        ...(exit.kind === 'io' ? { port: exit.port } : {}),
        mainThread: isMainThread,
      });
      if (answerIn && exit.kind === 'io' && exit.direction === 'in') {
        new DataView(exit.data.buffer, exit.data.byteOffset, 4).setUint32(0, data.answer, true);
        return true;
      }
      return false;
    },
  };
  return { early, seen };
}

describe.skipIf(!kvmAvailable)('VcpuRunner earlyRun: the guest starts on the starting thread', () => {
  it('runs here until an exit is declined; the worker adopts the vCPU and its handler answers that exit first', async () => {
    const { kvm, vm } = vmWithCode(ECHO_GUEST_64);
    const { early, seen } = recordingEarlyRun(vm, true);
    const runner = await VcpuRunner.start({ vm, id: 0, handler: echoHandler, data, earlyRun: early });
    // Answered here: the `in`; declined: the first `out`, which the worker's handler then saw.
    expect(seen).toEqual([
      { kind: 'io', port: 0x3f0, mainThread: true },
      { kind: 'io', port: 0x3f0, mainThread: true },
    ]);
    const heard: unknown[] = [];
    runner.onMessage((m) => heard.push(m));
    const result = await runner.done;
    expect(result.reason).toBe('handler-stop');
    // The same guest, the same values as a run wholly on the worker (vcpu-runner.test.ts).
    expect(heard.map((m) => ({ ...(m as object), threadRam: undefined }))).toEqual([
      { kind: 'out', port: 0x3f0, value: 0x1234_5678, threadRam: undefined },
      { kind: 'out', port: 0x3f0, value: 0x1234_5679, threadRam: undefined },
      { kind: 'mmio-write', addr: 0xd000_0000n, value: 0x1234_5679, threadRam: undefined },
    ]);
    // Every exit counted once, on whichever thread it happened.
    expect(runner.counters.snapshot()).toMatchObject({
      exits: 6,
      io: 4,
      ioIn: 1,
      ioOut: 3,
      mmio: 2,
      intr: 0,
    });
    await closeAll(kvm, vm);
  });

  it('a guest that never exits is taken by the worker when it is ready (a kick), and stops as usual', async () => {
    const before = processResources();
    const { kvm, vm } = vmWithCode(SPIN_GUEST_64);
    const { early, seen } = recordingEarlyRun(vm, false);
    const runner = await VcpuRunner.start({ vm, id: 0, handler: echoHandler, data, earlyRun: early });
    expect(seen).toEqual([]);
    // The worker's kick ended the early run; the runner's own kick is not counted as the guest's exit.
    expect(runner.counters.get('intr')).toBe(0);
    const result = await runner.stop({ saveState: true });
    expect(result.reason).toBe('stop-requested');
    // Still at the spin: the worker ran the vCPU the starting thread had set up.
    expect(BigInt(result.state?.regs.rip ?? -1)).toBe(CODE_GPA);
    await closeAll(kvm, vm);
    const after = processResources();
    expect(after.fds).toEqual(before.fds);
    expect(after.mappings).toEqual(before.mappings);
    expect(await settledThreads(before.threads)).toBe(before.threads);
  });

  it('works with a prepared worker (it may be ready before the guest declines anything)', async () => {
    const prepared = VcpuRunner.prepare({ handler: echoHandler });
    await new Promise((resolve) => setTimeout(resolve, 300)); // booted and waiting
    const { kvm, vm } = vmWithCode(ECHO_GUEST_64);
    const { early } = recordingEarlyRun(vm, true);
    const runner = await VcpuRunner.start({ vm, id: 0, prepared, data, earlyRun: early });
    const heard: unknown[] = [];
    runner.onMessage((m) => heard.push(m));
    expect((await runner.done).reason).toBe('handler-stop');
    expect(heard.map((m) => (m as { value?: number }).value)).toEqual([
      0x1234_5678, 0x1234_5679, 0x1234_5679,
    ]);
    await closeAll(kvm, vm);
  });

  it('a failing early run rejects start with its error and leaves nothing behind', async () => {
    const before = processResources();
    for (const failure of ['setup', 'onExit'] as const) {
      const { kvm, vm } = vmWithCode(ECHO_GUEST_64);
      const early: EarlyRun = {
        setup(vcpu) {
          if (failure === 'setup') throw Object.assign(new Error('no registers'), { code: 'EPERM' });
          setupLongMode(vm, vcpu, { entry: CODE_GPA, stack: STACK_GPA });
        },
        onExit() {
          throw Object.assign(new Error('device model failed'), { code: 'EIO' });
        },
      };
      await expect(
        VcpuRunner.start({ vm, id: 0, handler: echoHandler, data, earlyRun: early }),
      ).rejects.toMatchObject(
        failure === 'setup'
          ? { code: 'EPERM', message: 'no registers' }
          : { code: 'EIO', message: 'device model failed' },
      );
      await closeAll(kvm, vm);
    }
    const after = processResources();
    expect(after.fds).toEqual(before.fds);
    expect(after.mappings).toEqual(before.mappings);
    expect(await settledThreads(before.threads)).toBe(before.threads);
  });

  it("a handler that does not load: start rejects with the loader's error, the vCPU is closed", async () => {
    const before = processResources();
    const { kvm, vm } = vmWithCode(SPIN_GUEST_64);
    const { early } = recordingEarlyRun(vm, false);
    await expect(
      VcpuRunner.start({
        vm,
        id: 0,
        handler: new URL('./fixtures/missing.mjs', import.meta.url),
        data,
        earlyRun: early,
      }),
    ).rejects.toMatchObject({ code: 'ERR_MODULE_NOT_FOUND' });
    await closeAll(kvm, vm);
    expect(processResources().fds).toEqual(before.fds);
    expect(await settledThreads(before.threads)).toBe(before.threads);
  });

  it('is refused with restoreState (EINVAL): a restored vCPU resumes on its worker', async () => {
    const { kvm, vm } = vmWithCode(SPIN_GUEST_64);
    const { early } = recordingEarlyRun(vm, false);
    const state = {} as Parameters<typeof VcpuRunner.start>[0]['restoreState'];
    await expect(
      VcpuRunner.start({ vm, id: 0, handler: echoHandler, data, earlyRun: early, restoreState: state }),
    ).rejects.toMatchObject({ code: 'EINVAL' });
    await closeAll(kvm, vm);
  });
});
