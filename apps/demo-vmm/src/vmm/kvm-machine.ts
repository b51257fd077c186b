/**
 * The demo machine on /dev/kvm. Guest RAM is one memfd slot; the vCPU runs on
 * a kvm-linux VcpuRunner worker whose exit handler owns the virtio-mmio
 * register file; the block back-end runs here, on the main thread, woken by
 * the kick eventfd (KVM_IOEVENTFD on QueueNotify, datamatch 0) and completing
 * through the call eventfd (KVM_IRQFD on GSI 24, routed as an MSI). With
 * `--no-ioeventfd` the doorbell exits to the worker, which writes the same
 * kick eventfd; with `--no-irqfd` this thread injects with KVM_IRQ_LINE.
 */
import { errnoError } from '@rxvmm/errno';
import type { EventFd } from '@rxvmm/eventfd';
import { GuestMemory } from '@rxvmm/guest-memory';
import { openKvm, type PreparedVcpu, VcpuRunner } from '@rxvmm/kvm-linux';
import { BOOT_INFO_ADDR, GUEST_LOAD_ADDR, readResults, writeBootInfo } from '../guest/abi.js';
import { bootInfoFor } from '../guest/boot.js';
import { loadGuestImage } from '../guest/image.js';
import type { DeviceService } from './backends.js';
import { createDescriptionBuffer, failDescription, publishDescription } from './description.js';
import type { HostEvent } from './device-host.js';
import type { ExitHandlerData } from './exit-handler.js';
import { EXIT_HANDLER_URL } from './exit-handler-url.js';
import {
  BOOT_STACK,
  DEVICE_GSI,
  DEVICE_MSI,
  NO_IOAPIC_PIN,
  RAM_SIZE,
  SharedState,
  SharedTime,
  SharedWord,
} from './layout.js';
import type { MachineOptions, MachineRun } from './machine.js';
import { VCPU_WORKER_NAME } from './prepare-vcpu.js';
import { watchProgress } from './progress.js';
import { type DeviceSignals, wireDeviceSignals } from './signals.js';

export { EXIT_HANDLER_URL } from './exit-handler-url.js';
export { VCPU_WORKER_NAME } from './prepare-vcpu.js';

/**
 * Start-up order (the figure is process start → the guest's HELLO, its first instruction): the
 * vCPU worker is best started before this (`prepared`, from `VcpuRunner.prepare`), so that Node
 * boots it and it loads the exit handler while this thread sets up KVM. Only
 * what the vCPU needs is loaded before its worker starts (KVM, guest RAM, the image); the device
 * side (eventfds, ioeventfd/irqfd, virtio-blk, RxJS) is loaded and opened while the worker boots,
 * and reaches the worker through shared memory before the guest's first register access.
 */
export async function runOnKvm(options: MachineOptions, prepared?: PreparedVcpu): Promise<MachineRun> {
  const image = loadGuestImage();
  using kvm = openKvm();
  using vm = kvm.createVm();
  vm.createIrqChip();
  if (!vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: RAM_SIZE }))
    throw errnoError('ENOMEM', 'guest RAM slot was not created');
  const memory = new GuestMemory(vm.memoryRegions());
  memory.write(GUEST_LOAD_ADDR, image);
  writeBootInfo(memory, bootInfoFor({ ...options, ioapicPin: NO_IOAPIC_PIN }));
  vm.setGsiRouting([{ gsi: DEVICE_GSI, type: 'msi', ...DEVICE_MSI }]);
  const shared = new SharedState();

  const unsubscribes: (() => void)[] = [];
  const descriptionBuffer = createDescriptionBuffer();
  const data: ExitHandlerData = {
    entry: GUEST_LOAD_ADDR,
    stack: BOOT_STACK,
    bootInfo: BOOT_INFO_ADDR,
    description: descriptionBuffer,
    ramSize: RAM_SIZE,
    shared: shared.buffer,
  };
  const starting = VcpuRunner.start({
    vm,
    id: 0,
    data,
    ...(prepared?.pending ? { prepared } : { handler: EXIT_HANDLER_URL, name: VCPU_WORKER_NAME }),
  });
  // Events the worker sends before the device is open are replayed to it.
  const early: HostEvent[] = [];
  let deliver: (event: HostEvent) => void = (event) => early.push(event);
  const runnerOrError = starting.then(
    (r) => {
      unsubscribes.push(r.onMessage((m) => deliver(m as HostEvent)));
      return r;
    },
    (error: unknown) => error as Error,
  );

  let kick: EventFd | undefined;
  let call: EventFd | undefined;
  let signals: DeviceSignals | undefined;
  let service: DeviceService;
  try {
    const [{ EventFd }, { openDevice }] = await Promise.all([
      import('@rxvmm/eventfd'),
      import('./device.js'),
    ]);
    kick = new EventFd({ nonblock: true });
    const callFd = new EventFd({ nonblock: true });
    call = callFd;
    // Registered before the description is published: the guest cannot reach QueueNotify before then.
    signals = wireDeviceSignals(vm, options, kick, callFd);
    const { inject } = signals;
    shared.set(SharedWord.kickFd, kick.fd);
    const opened = await openDevice({
      diskPath: options.diskPath,
      memory,
      regions: vm.memoryRegions(),
      shared: shared.buffer,
      inject,
      vhostUser: options.vhostUser,
      kickFd: kick.fd,
      callFd: options.irqfd ? callFd.fd : undefined,
    });
    service = opened.service;
    publishDescription(descriptionBuffer, opened.description);
  } catch (error) {
    failDescription(descriptionBuffer);
    const r = await runnerOrError;
    if (!(r instanceof Error)) await r.stop();
    for (const off of unsubscribes) off();
    kick?.close();
    call?.close();
    throw error;
  }
  const svc = service;
  const kickFd = kick;
  deliver = (event) => svc.onHostEvent(event);
  for (const event of early.splice(0)) svc.onHostEvent(event);

  let kicks = 0;
  // With vhost-user the back-end reads the kick eventfd itself: the VMM stays off it.
  if (options.vhostUser === undefined) {
    const subscription = kickFd.signals$.subscribe((count) => {
      kicks += Number(count);
      svc.onKick?.(count);
    });
    unsubscribes.push(() => subscription.unsubscribe());
  }

  let runner: VcpuRunner | undefined;
  let stalled = false;
  try {
    const started = await runnerOrError;
    if (started instanceof Error) throw started;
    runner = started;
    const r = runner;
    const stopWatch = watchProgress({
      read: () => readResults(memory),
      onProgress: options.onProgress,
      stallMs: options.stallMs,
      onStall: () => {
        stalled = true;
        void r.stop();
      },
    });
    let aborted = false;
    const onAbort = () => {
      aborted = true;
      void r.stop();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
    const result = await r.done;
    options.signal?.removeEventListener('abort', onAbort);
    stopWatch();
    const counters = r.counters.snapshot();
    const results = readResults(memory);
    const hello = shared.times[SharedTime.hello] ?? 0;
    const done = shared.times[SharedTime.done] ?? 0;
    let end: string = result.reason === 'handler-stop' ? 'done' : result.reason;
    if (stalled) end = 'stalled';
    if (aborted) end = 'aborted';
    if (result.reason === 'exit' && result.exit) end = `exit:${result.exit.kind}`;
    if (result.reason === 'error') end = `error: ${result.error?.message ?? 'unknown'}`;
    return {
      backend: 'kvm',
      results,
      exits: {
        total: counters.exits,
        mmio: counters.mmio,
        io: counters.io,
        hlt: counters.hlt,
        intr: counters.intr,
        other: counters.exits - counters.mmio - counters.io - counters.hlt - counters.intr,
      },
      kicks,
      ioeventfdSignals: options.ioeventfd && options.vhostUser === undefined ? kicks : 0,
      irqfdInjections: signals?.injections.irqfd ?? 0,
      irqLineInjections: signals?.injections.irqLine ?? 0,
      startupMs: hello > 0 ? hello - performance.timeOrigin : undefined,
      seconds: hello > 0 && done > 0 ? (done - hello) / 1000 : 0,
      deviceStatus: shared.get(SharedWord.status),
      deviceFailure: svc.failure,
      end,
      guestRamBytes: RAM_SIZE,
    };
  } finally {
    if (runner && !runner.result) await runner.stop();
    for (const off of unsubscribes) off();
    await closeService(svc);
    kickFd.close();
    call.close();
  }
}

async function closeService(service: DeviceService): Promise<void> {
  await service.close().catch(() => undefined);
}
