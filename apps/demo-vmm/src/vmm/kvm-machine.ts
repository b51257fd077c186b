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
import {
  type EarlyRun,
  type LinuxVm,
  openKvm,
  type PreparedVcpu,
  setLongModeRegisters,
  VcpuRunner,
  writeLongModeTables,
} from '@rxvmm/kvm-linux';
import { BOOT_INFO_ADDR, GUEST_LOAD_ADDR, readResults, writeBootInfo } from '../guest/abi.js';
import { bootInfoFor } from '../guest/boot.js';
import { loadGuestImage } from '../guest/image.js';
import type { BlockService, DeviceService } from './backends.js';
import { createDescriptionBuffer, failDescription, publishDescription } from './description.js';
import type { HostEvent } from './device-host.js';
import type { ExitHandlerData, ExitHandlerRequest, TransportStateReply } from './exit-handler.js';
import { EXIT_HANDLER_URL } from './exit-handler-url.js';
import { answerHello, guestMilestones } from './guest-ports.js';
import { checkDemoSnapshot, type DemoSnapshotState, RAM_SEGMENT, takeSnapshot } from './kvm-snapshot.js';
import {
  BOOT_STACK,
  DEVICE_GSI,
  DEVICE_MSI,
  NO_IOAPIC_PIN,
  nowMs,
  RAM_SIZE,
  SharedState,
  SharedTime,
  SharedWord,
  sinceProcessStart,
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
 * boots it and it loads the exit handler while this thread sets up KVM. Only what the vCPU needs
 * is loaded before the guest starts (KVM, guest RAM, the image). A booting guest then starts HERE
 * (`earlyRun`): it zeroes its .bss and builds its page tables while Node still boots the worker,
 * until its first access to the device, which the worker (having adopted the vCPU) answers. The
 * device side (eventfds, ioeventfd/irqfd, virtio-blk, RxJS) is loaded and opened after that, and
 * reaches the worker through shared memory (the worker waits for it at that first access).
 */
export async function runOnKvm(options: MachineOptions, prepared?: PreparedVcpu): Promise<MachineRun> {
  // --restore: the machine of a checked snapshot file instead of a boot (docs/SNAPSHOT.md's order).
  const restoring: DemoSnapshotState | undefined = options.restore
    ? checkDemoSnapshot(options.restore.state)
    : undefined;
  using kvm = openKvm();
  using vm = kvm.createVm();
  let restoredFds: { kick: EventFd; call: EventFd } | undefined;
  if (restoring && options.restore) {
    const { EventFd } = await import('@rxvmm/eventfd');
    const saved = restoring.eventfds;
    const kickFd = EventFd.fromState(saved.kick.state, { nonblock: true });
    const callFd = EventFd.fromState(saved.call.state, { nonblock: true });
    restoredFds = { kick: kickFd, call: callFd };
    try {
      // Lazy (default): slot 0 maps the file's memory section copy-on-write, read as it is touched.
      // Copy: fresh memfd RAM (what a vhost-user back-end could map), filled from the file.
      const lazy = options.restoreMemory !== 'copy';
      const segment = options.restore.memory.find((m) => m.name === RAM_SEGMENT);
      if (options.restore.memory.length !== 1 || segment?.length !== RAM_SIZE)
        throw errnoError(
          'EINVAL',
          `the snapshot's memory is not this machine's (one ${RAM_SIZE}-byte segment)`,
        );
      const source = lazy
        ? { ...options.restore.memorySource(RAM_SEGMENT), private: true as const }
        : undefined;
      vm.restoreWiring(
        restoring.wiring,
        (fd) => (fd === saved.kick.fd ? kickFd : fd === saved.call.fd ? callFd : undefined),
        (slot) => (slot === 0 ? source : undefined),
      );
      const ram = vm.memoryRegions()[0];
      if (vm.memoryRegions().length !== 1 || ram?.size !== RAM_SIZE || ram.guestPhysAddr !== 0n)
        throw errnoError(
          'EINVAL',
          `the snapshot's memory is not this machine's (one ${RAM_SIZE}-byte slot at 0)`,
        );
      if (!lazy) await options.restore.readMemory(RAM_SEGMENT, ram.bytes);
      vm.restoreState(restoring.vm);
    } catch (error) {
      kickFd.close();
      callFd.close();
      throw error;
    }
  } else {
    const image = loadGuestImage();
    // RAM before the irqchip: on this kind of (nested) host a memory slot set after
    // KVM_CREATE_IRQCHIP takes ~6 ms (the kernel waits out its readers), before it ~0.1 ms.
    if (!vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: RAM_SIZE }))
      throw errnoError('ENOMEM', 'guest RAM slot was not created');
    vm.createIrqChip();
    const boot = new GuestMemory(vm.memoryRegions());
    boot.write(GUEST_LOAD_ADDR, image);
    // Long mode's GDT and page tables, with the image (bootHere sets only the registers).
    writeLongModeTables(vm);
    writeBootInfo(boot, bootInfoFor({ ...options, ioapicPin: NO_IOAPIC_PIN }));
    vm.setGsiRouting([{ gsi: DEVICE_GSI, type: 'msi', ...DEVICE_MSI }]);
  }
  const memory = new GuestMemory(vm.memoryRegions());
  const shared = new SharedState();

  const unsubscribes: (() => void)[] = [];
  const descriptionBuffer = createDescriptionBuffer();
  const data: ExitHandlerData = {
    description: descriptionBuffer,
    ramSize: RAM_SIZE,
    shared: shared.buffer,
    ...(restoring ? { restoreTransport: restoring.transport } : {}),
  };
  const starting = VcpuRunner.start({
    vm,
    id: 0,
    data,
    ...(restoring ? { restoreState: restoring.vcpu } : { earlyRun: bootHere(shared) }),
    ...(prepared?.pending ? { prepared } : { handler: EXIT_HANDLER_URL, name: VCPU_WORKER_NAME }),
  });
  // Events the worker sends before the device is open are replayed to it.
  const early: HostEvent[] = [];
  let deliver: (event: HostEvent) => void = (event) => early.push(event);
  /** When the vCPU was about to run (its worker's 'ready': the next step is KVM_RUN). */
  let readyAt = 0;
  const runnerOrError = starting.then(
    (r) => {
      readyAt = nowMs();
      unsubscribes.push(r.onMessage((m) => deliver(m as HostEvent)));
      // The restored register file activated the device during setup: its events were held for us.
      if (restoring) r.post({ type: 'listening' } satisfies ExitHandlerRequest);
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
    kick = restoredFds?.kick ?? new EventFd({ nonblock: true });
    const callFd = restoredFds?.call ?? new EventFd({ nonblock: true });
    call = callFd;
    // Registered before the description is published: the guest cannot reach QueueNotify before then.
    // (A restored wiring has them already.)
    signals = wireDeviceSignals(vm, { ...options, register: !restoring }, kick, callFd);
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
    // Before the register file exists: its restored activation resumes the rings where they were.
    if (restoring) (service as BlockService).blk.restoreState(restoring.device);
    publishDescription(descriptionBuffer, opened.description);
  } catch (error) {
    failDescription(descriptionBuffer);
    const r = await runnerOrError;
    if (!(r instanceof Error)) await r.stop();
    for (const off of unsubscribes) off();
    kick?.close();
    call?.close();
    if (!kick) restoredFds?.kick.close();
    if (!call) restoredFds?.call.close();
    throw error;
  }
  const svc = service;
  const kickFd = kick;
  deliver = (event) => svc.onHostEvent(event);
  for (const event of early.splice(0)) svc.onHostEvent(event);

  let kicks = 0;
  let stopReadingKicks = () => {};
  // With vhost-user the back-end reads the kick eventfd itself: the VMM stays off it.
  if (options.vhostUser === undefined) {
    const subscription = kickFd.signals$.subscribe((count) => {
      kicks += Number(count);
      svc.onKick?.(count);
    });
    stopReadingKicks = () => subscription.unsubscribe();
    unsubscribes.push(stopReadingKicks);
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
    if (restoring) shared.times[SharedTime.hello] = readyAt; // the resumed guest's first instruction
    let snapshot: MachineRun['snapshot'];
    let snapshotError: unknown;
    const stopSnapshotWatch = options.snapshot
      ? watchForSnapshot(
          () => Number(readResults(memory).verified),
          options.snapshot.after,
          async () => {
            try {
              snapshot = await writeMachineSnapshot(options, {
                vm,
                runner: r,
                service: svc as BlockService,
                kick: kickFd,
                call,
                stopReadingKicks,
              });
            } catch (error) {
              snapshotError = error;
            }
            await r.stop();
          },
        )
      : () => {};
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
    stopSnapshotWatch();
    if (snapshotError) throw snapshotError;
    const counters = r.counters.snapshot();
    const results = readResults(memory);
    let end: string = result.reason === 'handler-stop' ? 'done' : result.reason;
    if (stalled) end = 'stalled';
    if (aborted) end = 'aborted';
    if (result.reason === 'exit' && result.exit) end = `exit:${result.exit.kind}`;
    if (result.reason === 'error') end = `error: ${result.error?.message ?? 'unknown'}`;
    if (snapshot) end = 'snapshot';
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
      ...guestMilestones(shared),
      deviceStatus: shared.get(SharedWord.status),
      deviceFailure: svc.failure,
      end,
      guestRamBytes: RAM_SIZE,
      ...(snapshot ? { snapshot } : {}),
      ...(options.restore
        ? {
            restore: {
              path: options.restore.path,
              bytes: options.restore.size,
              resumeMs: sinceProcessStart(readyAt),
              memory: options.restoreMemory === 'copy' ? 'copy' : 'private',
            },
          }
        : {}),
    };
  } finally {
    if (runner && !runner.result) await runner.stop();
    for (const off of unsubscribes) off();
    await closeService(svc);
    kickFd.close();
    call.close();
  }
}

/**
 * The guest's start on this thread: long mode at the image's entry (its tables are in RAM already),
 * HELLO answered here; the first other exit (its first access to the device) goes to the worker.
 */
function bootHere(shared: SharedState): EarlyRun {
  return {
    setup(vcpu) {
      setLongModeRegisters(vcpu, {
        entry: GUEST_LOAD_ADDR,
        stack: BOOT_STACK,
        regs: { rdi: BOOT_INFO_ADDR },
      });
    },
    onExit: (exit) => answerHello(exit, shared),
  };
}

async function closeService(service: DeviceService): Promise<void> {
  await service.close().catch(() => undefined);
}

/** Calls `take` once, when the guest has verified `after` requests (checked every millisecond). */
function watchForSnapshot(verified: () => number, after: number, take: () => Promise<void>): () => void {
  let taken = false;
  const timer = setInterval(() => {
    if (taken || verified() < after) return;
    taken = true;
    clearInterval(timer);
    void take();
  }, 1);
  return () => clearInterval(timer);
}

/** Pauses the machine at the requested moment, writes the snapshot file, reports what it cost. */
async function writeMachineSnapshot(
  options: MachineOptions,
  parts: {
    vm: LinuxVm;
    runner: VcpuRunner;
    service: BlockService;
    kick: EventFd;
    call: EventFd;
    stopReadingKicks: () => void;
  },
): Promise<NonNullable<MachineRun['snapshot']>> {
  const request = options.snapshot;
  if (!request) throw errnoError('EINVAL', 'no snapshot was asked for');
  const t0 = performance.now();
  const { runner } = parts;
  const taken = await takeSnapshot(
    {
      ...parts,
      machine: {
        requests: options.requests,
        blockSize: options.blockSize,
        ioeventfd: options.ioeventfd,
        irqfd: options.irqfd,
        disk: options.diskPath,
        guestMode: options.guestMode,
      },
      transportState: () =>
        new Promise((resolve, reject) => {
          const off = runner.onMessage((m) => {
            const reply = m as TransportStateReply;
            if (reply.type !== 'transport-state') return;
            off();
            if (reply.state) resolve(reply.state);
            else
              reject(errnoError('EIO', 'the register file has no state to save (the device never started)'));
          });
          runner.post({ type: 'transport-state' } satisfies ExitHandlerRequest);
        }),
    },
    request.at,
  );
  const { writeSnapshot } = await import('@rxvmm/snapshot');
  const written = await writeSnapshot(
    request.path,
    { state: taken.state, memory: [{ name: RAM_SEGMENT, bytes: taken.ram }] },
    { writer: request.writer },
  );
  return {
    path: written.path,
    bytes: written.size,
    saveMs: performance.now() - t0,
    pendingDoorbells: taken.state.pending.doorbells,
    pendingInterrupt: taken.state.pending.interrupt,
  };
}
