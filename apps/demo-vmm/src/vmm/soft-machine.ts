/**
 * The demo machine on SoftKvm (pure TypeScript): the same device path as on
 * KVM — the register file (DeviceHost) answers MMIO exits, the VirtioBlk
 * back-end is woken by the kick eventfd that SoftKvm's ioeventfd signals and
 * completes through an irqfd routed as an MSI — with the guest written as a
 * TypeScript program (guest/soft-guest.ts). Everything runs on this thread:
 * the vCPU loop yields to the event loop whenever the guest sleeps.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { errnoError } from '@rxvmm/errno';
import { SoftEventFd } from '@rxvmm/eventfd';
import { GuestMemory } from '@rxvmm/guest-memory';
import { SoftKvm } from '@rxvmm/kvm-soft';
import { BOOT_INFO_ADDR, readResults, writeBootInfo } from '../guest/abi.js';
import { bootInfoFor } from '../guest/boot.js';
import { blkGuestProgram } from '../guest/soft-guest.js';
import { openDevice } from './device.js';
import { DeviceHost } from './device-host.js';
import { answerDone, answerHello, guestMilestones, noteDeviceAccess } from './guest-ports.js';
import { DEVICE_GSI, DEVICE_MSI, NO_IOAPIC_PIN, RAM_SIZE, SharedState, SharedWord } from './layout.js';
import type { MachineOptions, MachineRun } from './machine.js';
import { watchProgress } from './progress.js';
import { wireDeviceSignals } from './signals.js';

export async function runOnSoft(options: MachineOptions): Promise<MachineRun> {
  using kvm = new SoftKvm();
  using vm = kvm.createVm();
  if (!vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: RAM_SIZE }))
    throw errnoError('ENOMEM', 'guest RAM slot was not created');
  const memory = new GuestMemory(vm.memoryRegions());
  vm.createIrqChip();
  vm.setGsiRouting([{ gsi: DEVICE_GSI, type: 'msi', ...DEVICE_MSI }]);
  writeBootInfo(memory, bootInfoFor({ ...options, ioapicPin: NO_IOAPIC_PIN }));

  const shared = new SharedState();
  using kick = new SoftEventFd();
  using call = new SoftEventFd();
  const signals = wireDeviceSignals(vm, options, kick, call);
  const { inject } = signals;

  const { service, description } = await openDevice({
    diskPath: options.diskPath,
    memory,
    regions: vm.memoryRegions(),
    shared: shared.buffer,
    inject,
    vhostUser: undefined,
    kickFd: kick.fd,
    callFd: undefined,
  });
  const host = new DeviceHost({
    ...description,
    ramSize: RAM_SIZE,
    shared: shared.buffer,
    // The same hop as on KVM (a message to the back-end side), so the order of events matches.
    emit: (event) => queueMicrotask(() => service.onHostEvent(event)),
    kick: () => kick.write(1n),
  });
  let kicks = 0;
  const sub = kick.signals$.subscribe((count) => {
    kicks += Number(count);
    service.onKick?.(count);
  });

  const exits = { total: 0, mmio: 0, io: 0, hlt: 0, intr: 0, other: 0 };
  let end = 'done';
  let stalled = false;
  const stopWatch = watchProgress({
    read: () => readResults(memory),
    onProgress: options.onProgress,
    stallMs: options.stallMs,
    onStall: () => {
      stalled = true;
    },
  });
  try {
    using vcpu = vm.createSoftVcpu(0);
    vcpu.setRegs({ ...vcpu.getRegs(), rdi: BOOT_INFO_ADDR });
    vcpu.load(blkGuestProgram);
    let sinceYield = 0;
    const abortedPromise = new Promise<void>((resolve) => {
      options.signal?.addEventListener('abort', () => resolve(), { once: true });
    });
    for (;;) {
      if (stalled || options.signal?.aborted) {
        end = stalled ? 'stalled' : 'aborted';
        break;
      }
      const exit = vcpu.run();
      exits.total++;
      if (exit.kind === 'intr') {
        exits.intr++;
        await Promise.race([vcpu.whenRunnable(), abortedPromise]);
        sinceYield = 0;
        continue;
      }
      if (exit.kind === 'mmio') {
        exits.mmio++;
        noteDeviceAccess(exit.addr, shared);
        if (!host.handleMmio(exit.addr, exit.isWrite, exit.data) && !exit.isWrite) exit.data.fill(0xff);
      } else if (exit.kind === 'io') {
        exits.io++;
        if (answerDone(exit, shared)) break;
        if (!answerHello(exit, shared) && exit.direction === 'in') exit.data.fill(0xff);
      } else {
        if (exit.kind === 'hlt') exits.hlt++;
        else exits.other++;
        end =
          exit.kind === 'internal-error' ? `internal-error: ${String(vcpu.lastError)}` : `exit:${exit.kind}`;
        break;
      }
      // Let the back-end's I/O and the progress timer run during long exit-bound stretches.
      if (++sinceYield >= 256) {
        sinceYield = 0;
        await yieldToLoop();
      }
    }
    await yieldToLoop(); // deliver the register file's last events to the back-end side
    const results = readResults(memory);
    return {
      backend: 'soft',
      results,
      exits,
      kicks,
      ioeventfdSignals: options.ioeventfd ? kicks : 0,
      irqfdInjections: signals.injections.irqfd,
      irqLineInjections: signals.injections.irqLine,
      ...guestMilestones(shared),
      deviceStatus: shared.get(SharedWord.status),
      deviceFailure: service.failure,
      end,
      guestRamBytes: RAM_SIZE,
    };
  } finally {
    stopWatch();
    sub.unsubscribe();
    await service.close().catch(() => undefined);
  }
}
