import { filter, firstValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { openKvm } from '../kvm.js';
import { kvmAvailable } from '../test-support/availability.js';
import { processResources, settledThreads } from '../test-support/leaks.js';
import {
  CODE_GPA,
  ECHO_GUEST_64,
  MMIO_GPA,
  SLEEP_GUEST_64,
  SPIN_GUEST_64,
  STACK_GPA,
} from '../test-support/tiny-guests.js';
import { VCPU_WORKER_URL, VcpuRunner } from './vcpu-runner.js';

const echoHandler = new URL('./fixtures/echo-handler.mjs', import.meta.url);
const badSetupHandler = new URL('./fixtures/bad-setup-handler.mjs', import.meta.url);

function vmWithCode(code: Uint8Array, irqchip = false) {
  const kvm = openKvm();
  const vm = kvm.createVm();
  if (irqchip) vm.createIrqChip();
  const ram = vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 1 << 20 });
  ram?.bytes.set(code, Number(CODE_GPA));
  return { kvm, vm };
}

const data = { entry: CODE_GPA, stack: STACK_GPA, answer: 0x1234_5678 };

describe.skipIf(!kvmAvailable)('VcpuRunner on /dev/kvm', () => {
  it('runs the handler inside the worker: answers in and MMIO reads there, posts values, stops on DONE', async () => {
    const { kvm, vm } = vmWithCode(ECHO_GUEST_64);
    const runner = await VcpuRunner.start({ vm, id: 0, handler: echoHandler, data });
    const messages = firstValueFrom(runner.messages$.pipe(toArray()));
    const heard: unknown[] = [];
    runner.onMessage((m) => heard.push(m)); // the plain-callback form sees the same messages
    const result = await runner.done;
    expect(result.reason).toBe('handler-stop');
    expect(heard).toEqual(await messages);
    expect(result.exit).toMatchObject({ kind: 'io', port: 0x3f4, direction: 'out' });
    expect(await messages).toEqual([
      // The worker saw guest RAM through its own view of the mapping (threadRam).
      { kind: 'out', port: 0x3f0, value: 0x1234_5678, threadRam: ECHO_GUEST_64.slice(0, 4) },
      { kind: 'out', port: 0x3f0, value: 0x1234_5679, threadRam: ECHO_GUEST_64.slice(0, 4) },
      { kind: 'mmio-write', addr: MMIO_GPA, value: 0x1234_5679 },
    ]);
    expect(runner.counters.snapshot()).toMatchObject({
      exits: 6,
      io: 4,
      ioIn: 1,
      ioOut: 3,
      mmio: 2,
      mmioRead: 1,
      mmioWrite: 1,
      intr: 0,
    });
    vm.close();
    await vm.whenReleased();
    kvm.close();
  });

  it('runs on a worker prepared before the VM existed (same exits, same messages)', async () => {
    const prepared = VcpuRunner.prepare({ handler: echoHandler, name: 'prepared-vcpu0' });
    const { kvm, vm } = vmWithCode(ECHO_GUEST_64);
    const runner = await VcpuRunner.start({ vm, id: 0, prepared, data });
    expect(prepared.pending).toBe(false);
    const heard: unknown[] = [];
    runner.onMessage((m) => heard.push(m));
    const result = await runner.done;
    expect(result.reason).toBe('handler-stop');
    expect(heard.map((m) => (m as { kind: string }).kind)).toEqual(['out', 'out', 'mmio-write']);
    expect(runner.counters.get('exits')).toBe(6);
    // A prepared worker is used once.
    await expect(VcpuRunner.start({ vm, id: 1, prepared, data })).rejects.toMatchObject({ code: 'EINVAL' });
    vm.close();
    await vm.whenReleased();
    kvm.close();
  });

  it('prepares a given worker entry with a CommonJS handler (.cjs, loaded with require); a missing entry is ENOENT', async () => {
    const prepared = VcpuRunner.prepare({
      handler: new URL('./fixtures/echo-handler.cjs', import.meta.url),
      worker: VCPU_WORKER_URL, // the entry a VMM's bundle replaces; here kvm-linux's own, named explicitly
    });
    const { kvm, vm } = vmWithCode(ECHO_GUEST_64);
    const runner = await VcpuRunner.start({ vm, id: 0, prepared, data });
    const heard: unknown[] = [];
    runner.onMessage((m) => heard.push(m));
    expect((await runner.done).reason).toBe('handler-stop');
    expect(heard).toHaveLength(3);
    vm.close();
    await vm.whenReleased();
    kvm.close();
    expect(() =>
      VcpuRunner.prepare({
        handler: echoHandler,
        worker: new URL('./fixtures/no-such-worker.cjs', import.meta.url),
      }),
    ).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('refuses a handler other than the prepared one; an unused prepared worker is disposed', async () => {
    const threads = (await import('node:fs')).readdirSync('/proc/self/task').length;
    const prepared = VcpuRunner.prepare({ handler: echoHandler });
    const { kvm, vm } = vmWithCode(ECHO_GUEST_64);
    await expect(
      VcpuRunner.start({ vm, id: 0, prepared, handler: badSetupHandler, data }),
    ).rejects.toMatchObject({ code: 'EINVAL' });
    expect(prepared.pending).toBe(true);
    prepared[Symbol.dispose]();
    expect(prepared.pending).toBe(false);
    expect(await settledThreads(threads)).toBeLessThanOrEqual(threads);
    vm.close();
    kvm.close();
  });

  it('kicks a spinning guest out of KVM_RUN from the main thread, then stops it', async () => {
    const { kvm, vm } = vmWithCode(SPIN_GUEST_64);
    const runner = await VcpuRunner.start({ vm, id: 0, handler: echoHandler, data });
    const kicked = firstValueFrom(
      runner.messages$.pipe(filter((m) => (m as { kind: string }).kind === 'kicked')),
    );
    expect(runner.kick()).toBe(true);
    await kicked;
    expect(runner.counters.get('intr')).toBeGreaterThanOrEqual(1);
    runner.post('hello');
    const echo = await firstValueFrom(
      runner.messages$.pipe(filter((m) => (m as { kind: string }).kind === 'echo')),
    );
    expect(echo).toEqual({ kind: 'echo', message: 'hello' });
    const result = await runner.stop();
    expect(result.reason).toBe('stop-requested');
    expect(runner.kick()).toBe(false); // the vCPU is gone: kicks are refused, not sent
    vm.close();
    kvm.close();
  });

  it('stops a vCPU sleeping in hlt with the in-kernel irqchip (no exit otherwise)', async () => {
    const { kvm, vm } = vmWithCode(SLEEP_GUEST_64, true);
    const runner = await VcpuRunner.start({ vm, id: 0, handler: echoHandler, data });
    const result = await runner.stop();
    expect(result.reason).toBe('stop-requested');
    expect(runner.counters.get('hlt')).toBe(0);
    vm.close();
    kvm.close();
  });

  it('closing the VM stops its runners and keeps RAM mapped until the worker is gone', async () => {
    const { kvm, vm } = vmWithCode(SPIN_GUEST_64);
    const runner = await VcpuRunner.start({ vm, id: 0, handler: echoHandler, data });
    vm.close();
    const result = await runner.done;
    expect(result.reason).toBe('stop-requested');
    await vm.whenReleased();
    kvm.close();
  });

  it('ends with the exit that ends a run by default (shutdown), or with the error the handler threw', async () => {
    {
      const { kvm, vm } = vmWithCode(new Uint8Array([0x0f, 0x0b])); // ud2, no IDT: triple fault
      const runner = await VcpuRunner.start({ vm, id: 0, handler: echoHandler, data });
      expect(await runner.done).toMatchObject({ reason: 'exit', exit: { kind: 'shutdown' } });
      expect(runner.counters.get('shutdown')).toBe(1);
      kvm.close();
    }
    {
      const { kvm, vm } = vmWithCode(new Uint8Array([0x66, 0xba, 0xf1, 0x03, 0xee])); // out 0x3f1, al
      const runner = await VcpuRunner.start({ vm, id: 0, handler: echoHandler, data });
      const result = await runner.done;
      expect(result).toMatchObject({
        reason: 'error',
        error: { message: 'device model failed', code: 'EIO' },
      });
      expect(result.exit).toMatchObject({ kind: 'io', port: 0x3f1 });
      kvm.close();
    }
  });

  it('a VM closed while its runner starts keeps its fd until the worker is done', async () => {
    const before = processResources();
    const { kvm, vm } = vmWithCode(SPIN_GUEST_64);
    const starting = VcpuRunner.start({ vm, id: 0, handler: echoHandler, data });
    vm.close();
    const runner = await starting.catch(() => undefined);
    if (runner) expect((await runner.done).reason).toBe('stop-requested');
    await vm.whenReleased();
    kvm.close();
    expect(processResources().fds).toEqual(before.fds);
  });

  it('a worker killed by an uncaught exception still leaves no vCPU fd or kvm_run mapping', async () => {
    const before = processResources();
    const { kvm, vm } = vmWithCode(SPIN_GUEST_64);
    const runner = await VcpuRunner.start({
      vm,
      id: 0,
      handler: new URL('./fixtures/crash-handler.mjs', import.meta.url),
      data,
    });
    runner.kick();
    const result = await runner.done;
    expect(result.reason).toBe('error');
    expect(result.error?.message).toMatch(/async crash/);
    expect(runner.kick()).toBe(false);
    vm.close();
    await vm.whenReleased();
    kvm.close();
    const after = processResources();
    expect(after.fds).toEqual(before.fds);
    expect(after.mappings).toEqual(before.mappings);
  });

  it('rejects start when the handler setup throws, with its code', async () => {
    const { kvm, vm } = vmWithCode(SPIN_GUEST_64);
    await expect(VcpuRunner.start({ vm, id: 0, handler: badSetupHandler })).rejects.toMatchObject({
      code: 'EPERM',
    });
    vm.close();
    await vm.whenReleased();
    kvm.close();
  });

  it('leaves no fd, mapping or thread behind', async () => {
    const before = processResources();
    for (let i = 0; i < 3; i++) {
      const { kvm, vm } = vmWithCode(SPIN_GUEST_64);
      const runners = await Promise.all(
        [0, 1].map((id) => VcpuRunner.start({ vm, id, handler: echoHandler, data })),
      );
      expect(processResources().threads).toBeGreaterThanOrEqual(before.threads + 2);
      await Promise.all(runners.map((r) => r.stop()));
      vm.close();
      await vm.whenReleased();
      kvm.close();
    }
    const after = processResources();
    expect(after.fds).toEqual(before.fds);
    expect(after.mappings).toEqual(before.mappings);
    expect(await settledThreads(before.threads)).toBe(before.threads);
  });
});
