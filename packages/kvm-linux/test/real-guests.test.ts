/**
 * Real guests (guest/*.S) on /dev/kvm, each vCPU on a VcpuRunner worker with
 * its exits answered inside that worker (handlers/guest-handler.mjs).
 */

import { readdirSync, readlinkSync } from 'node:fs';
import { EventFd, perSignal, signalEach } from '@rxvmm/eventfd';
import { IOEVENTFD_FLAG_DATAMATCH, IOEVENTFD_FLAG_PIO, IRQFD_FLAG_RESAMPLE } from '@rxvmm/kvm';
import { filter, firstValueFrom, type Observable, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { type LinuxKvm, type LinuxVm, openKvm, VcpuRunner } from '../src/index.js';
import { kvmAvailable } from '../src/test-support/availability.js';
import { processResources, settledThreads } from '../src/test-support/leaks.js';
import { type GuestName, type GuestParams, LAYOUT, loadGuest } from './guests.js';

const MMIO = 0xd000_0000n;
const handler = new URL('./handlers/guest-handler.mjs', import.meta.url);

type Posted =
  | { kind: 'report'; value: number }
  | { kind: 'io'; direction: 'in' | 'out'; port: number; size: number; value: bigint }
  | { kind: 'mmio'; isWrite: boolean; addr: bigint; len: number; value: bigint }
  | { kind: 'unexpected'; exit: unknown };

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function machine(options: { irqchip?: boolean } = {}): { kvm: LinuxKvm; vm: LinuxVm } {
  const kvm = openKvm();
  const vm = kvm.createVm();
  cleanups.push(() => kvm.close());
  cleanups.push(async () => {
    vm.close();
    await vm.whenReleased();
  });
  vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 2 << 20 });
  if (options.irqchip) vm.createIrqChip();
  return { kvm, vm };
}

function eventFd(): EventFd {
  const e = new EventFd({ nonblock: true });
  cleanups.push(() => e.close());
  return e;
}

interface Run {
  runner: VcpuRunner;
  /** Everything the handler posted, once the run is over. */
  posted: Promise<Posted[]>;
  messages$: Observable<Posted>;
}

async function run(
  vm: LinuxVm,
  guest: GuestName,
  params: GuestParams,
  answers: { pioAnswer?: bigint; mmioAnswer?: bigint } = {},
): Promise<Run> {
  const entry = loadGuest(vm, guest, params);
  const runner = await VcpuRunner.start({
    vm,
    id: 0,
    handler,
    data: {
      entry,
      stack: LAYOUT.stackTop,
      reportPort: LAYOUT.reportPort,
      donePort: LAYOUT.donePort,
      ...answers,
    },
  });
  cleanups.push(() => runner.stop());
  const messages$ = runner.messages$ as Observable<Posted>;
  return { runner, messages$, posted: firstValueFrom(messages$.pipe(toArray())) };
}

const reportsOf = (posted: Posted[]) => posted.flatMap((p) => (p.kind === 'report' ? [p.value] : []));

describe.skipIf(!kvmAvailable)('real guests on /dev/kvm (vCPU on a worker, exits handled there)', () => {
  it('MMIO exits: each write is one exit with its address, length and data; a read gets the VMM answer', async () => {
    const { vm } = machine();
    const w = await run(vm, 'mmio-writer', {
      addr: MMIO + 8n,
      len: 8,
      value: 0x1122_3344_5566_7788n,
      count: 3,
    });
    expect((await w.runner.done).reason).toBe('handler-stop');
    const write = { kind: 'mmio', isWrite: true, addr: MMIO + 8n, len: 8, value: 0x1122_3344_5566_7788n };
    expect(await w.posted).toEqual([write, write, write]);
    expect(w.runner.counters.snapshot()).toMatchObject({ mmioWrite: 3, mmioRead: 0, ioOut: 1 });

    for (const len of [1, 2, 4, 8]) {
      const { vm } = machine();
      const r = await run(
        vm,
        'mmio-reader',
        { addr: MMIO + 0x40n, len },
        { mmioAnswer: 0xa1b2_c3d4_e5f6_0718n },
      );
      await r.runner.done;
      const posted = await r.posted;
      expect(posted[0]).toMatchObject({ kind: 'mmio', isWrite: false, addr: MMIO + 0x40n, len });
      const mask = len >= 4 ? 0xffff_ffffn : (1n << BigInt(8 * len)) - 1n;
      expect(reportsOf(posted)).toEqual([Number(0xe5f6_0718n & mask)]);
    }
  });

  it('PIO exits: outs of each size, and an in answered by the VMM', async () => {
    for (const len of [1, 2, 4]) {
      const { vm } = machine();
      const w = await run(vm, 'pio-writer', { addr: 0x510n, len, value: 0xdead_beefn, count: 2 });
      await w.runner.done;
      const value = 0xdead_beefn & ((1n << BigInt(8 * len)) - 1n);
      const out = { kind: 'io', direction: 'out', port: 0x510, size: len, value };
      expect(await w.posted).toEqual([out, out]);
    }
    const { vm } = machine();
    const r = await run(vm, 'pio-reader', { addr: 0x512n, len: 4 }, { pioAnswer: 0xcafe_f00dn });
    await r.runner.done;
    const posted = await r.posted;
    expect(posted[0]).toMatchObject({ kind: 'io', direction: 'in', port: 0x512, size: 4 });
    expect(reportsOf(posted)).toEqual([0xcafe_f00d]);
  });

  it('doorbells absorbed by ioeventfds: the eventfd counts every write and the exit counters show no doorbell exit', async () => {
    const { vm } = machine();
    const mmioBell = eventFd();
    vm.ioeventfd({ addr: MMIO, len: 4, fd: mmioBell });
    const m = await run(vm, 'mmio-writer', { addr: MMIO, len: 4, value: 1n, count: 1000 });
    await m.runner.done;
    expect(mmioBell.read()).toBe(1000n);
    expect(await m.posted).toEqual([]);
    // The only exit was DONE.
    expect(m.runner.counters.snapshot()).toMatchObject({ exits: 1, mmio: 0, io: 1 });

    const { vm: vm2 } = machine();
    const pioBell = eventFd();
    vm2.ioeventfd({ addr: 0x600n, len: 2, fd: pioBell, flags: IOEVENTFD_FLAG_PIO });
    const p = await run(vm2, 'pio-writer', { addr: 0x600n, len: 2, value: 7n, count: 500 });
    await p.runner.done;
    expect(pioBell.read()).toBe(500n);
    expect(p.runner.counters.snapshot()).toMatchObject({ exits: 1, io: 1, ioOut: 1 });
  });

  it('datamatch ioeventfd: the matching value is absorbed, other values exit in order', async () => {
    const { vm } = machine();
    const bell = eventFd();
    vm.ioeventfd({ addr: MMIO + 0x10n, len: 4, fd: bell, flags: IOEVENTFD_FLAG_DATAMATCH, datamatch: 1n });
    const s = await run(vm, 'mmio-sequence', { addr: MMIO + 0x10n, len: 4, values: [1n, 2n, 1n, 3n, 1n] });
    await s.runner.done;
    expect(bell.read()).toBe(3n);
    expect(await s.posted).toEqual([
      { kind: 'mmio', isWrite: true, addr: MMIO + 0x10n, len: 4, value: 2n },
      { kind: 'mmio', isWrite: true, addr: MMIO + 0x10n, len: 4, value: 3n },
    ]);
    expect(s.runner.counters.get('mmioWrite')).toBe(2);
  });

  it('irqfd: each eventfd write raises the IOAPIC pin and the guest IDT handler takes the vector', async () => {
    const { vm } = machine({ irqchip: true });
    const irq = eventFd();
    vm.irqfd({ fd: irq, gsi: 5 });
    const r = await run(vm, 'interrupt-waiter', { count: 3, ioapicPin: 5, vector: 0x40, ready: true });
    // Signal at READY (the pin is programmed), then once per interrupt taken: the
    // vCPU sleeps in the kernel (hlt, no exit) between them.
    r.messages$.pipe(filter((m) => m.kind === 'report')).subscribe(() => irq.write(1n));
    await r.runner.done;
    expect(reportsOf(await r.posted)).toEqual([LAYOUT.readyReport, 0x40, 0x40, 0x40]);
    expect(r.runner.counters.get('hlt')).toBe(0);
  });

  it('irqfd through an MSI route reaches the guest handler directly', async () => {
    const { vm } = machine({ irqchip: true });
    vm.setGsiRouting([{ gsi: 40, type: 'msi', addressLo: 0xfee0_0000, addressHi: 0, data: 0x61 }]);
    const irq = eventFd();
    vm.irqfd({ fd: irq, gsi: 40 });
    const r = await run(vm, 'interrupt-waiter', { count: 1, vector: 0x61, ready: true });
    r.messages$
      .pipe(filter((m) => m.kind === 'report' && m.value === LAYOUT.readyReport))
      .subscribe(() => irq.write(1n));
    await r.runner.done;
    expect(reportsOf(await r.posted)).toEqual([LAYOUT.readyReport, 0x61]);
  });

  it('level-triggered line with resample: the VMM re-asserts on each resamplefd signal while it has work', async () => {
    const { vm } = machine({ irqchip: true });
    const irq = eventFd();
    const resample = eventFd();
    vm.irqfd({ fd: irq, gsi: 10, flags: IRQFD_FLAG_RESAMPLE, resamplefd: resample });
    const pending = 4;
    const r = await run(vm, 'interrupt-waiter', {
      count: pending,
      ioapicPin: 10,
      vector: 0x50,
      level: true,
      ready: true,
    });
    // The device: its line is up while it has work; the kernel lowers it and tells
    // us through the resamplefd, and we raise it again while work remains. (On this
    // machine's /dev/kvm, kvm_pvm, the resamplefd fires when the guest takes the
    // interrupt, before its EOI; upstream VMX/SVM documents the EOI. Counting
    // resamples holds either way: one per interrupt taken.)
    let resamples = 0;
    resample.signals$.subscribe((n) => {
      resamples += Number(n);
      if (resamples < pending) irq.write(1n);
    });
    r.messages$
      .pipe(filter((m) => m.kind === 'report' && m.value === LAYOUT.readyReport))
      .subscribe(() => irq.write(1n));
    await r.runner.done;
    expect(reportsOf(await r.posted)).toEqual([LAYOUT.readyReport, 0x50, 0x50, 0x50, 0x50]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(resamples).toBe(pending);
  });

  it('a VMM in RxJS: doorbell (ioeventfd, no exit) -> back-end on signals$ -> irqfd -> guest handler, N times', async () => {
    const { vm } = machine({ irqchip: true });
    const doorbell = eventFd();
    const irq = eventFd();
    vm.ioeventfd({ addr: MMIO + 0x100n, len: 4, fd: doorbell });
    vm.irqfd({ fd: irq, gsi: 5 });
    const requests = 5;
    const r = await run(vm, 'interrupt-waiter', {
      count: requests,
      ioapicPin: 5,
      vector: 0x44,
      addr: MMIO + 0x100n,
      value: 1n,
    });
    // The device back-end: one completion interrupt per doorbell.
    let served = 0;
    const backend = doorbell.signals$.pipe(perSignal(), signalEach(irq)).subscribe(() => served++);
    await r.runner.done;
    backend.unsubscribe();
    expect(reportsOf(await r.posted)).toEqual(Array(requests).fill(0x44));
    expect(served).toBe(requests);
    // Neither the doorbells nor the sleeps between them left the kernel.
    expect(r.runner.counters.snapshot()).toMatchObject({ mmio: 0, hlt: 0, ioOut: requests + 1 });
  });

  /** Every open fd of the process (processResources() only lists the KVM and guest-RAM ones). */
  const allFds = () =>
    readdirSync('/proc/self/fd')
      .map((fd) => {
        try {
          return `${fd} -> ${readlinkSync(`/proc/self/fd/${fd}`)}`;
        } catch {
          return undefined; // the directory fd readdir used
        }
      })
      .filter((x) => x !== undefined)
      .sort();

  it('teardown leaves no fd, mapping or thread behind', async () => {
    const before = processResources();
    const fdsBefore = allFds();
    const threadsBefore = before.threads;
    {
      const kvm = openKvm();
      const vm = kvm.createVm();
      vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 2 << 20 });
      vm.createIrqChip();
      const bell = new EventFd({ nonblock: true });
      const irq = new EventFd({ nonblock: true });
      vm.ioeventfd({ addr: MMIO, len: 4, fd: bell });
      vm.irqfd({ fd: irq, gsi: 5 });
      const entry = loadGuest(vm, 'interrupt-waiter', { count: 1, ioapicPin: 5, vector: 0x40, ready: true });
      const runner = await VcpuRunner.start({
        vm,
        id: 0,
        handler,
        data: { entry, stack: LAYOUT.stackTop, reportPort: LAYOUT.reportPort, donePort: LAYOUT.donePort },
      });
      const during = processResources();
      expect(during.fds.length).toBeGreaterThan(before.fds.length);
      expect(allFds().filter((f) => f.includes('eventfd')).length).toBeGreaterThanOrEqual(2);
      expect(during.mappings.length).toBeGreaterThan(before.mappings.length);
      runner.messages$.subscribe(() => irq.write(1n));
      await runner.done;
      vm.close();
      await vm.whenReleased();
      kvm.close();
      bell.close();
      irq.close();
    }
    const after = processResources();
    expect(after.fds).toEqual(before.fds);
    expect(allFds()).toEqual(fdsBefore);
    expect(after.mappings).toEqual(before.mappings);
    expect(await settledThreads(threadsBefore)).toBe(threadsBefore);
  });
});
