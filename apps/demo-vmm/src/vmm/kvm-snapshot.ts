/**
 * `--snapshot-after N --snapshot FILE` and `--restore FILE` on /dev/kvm: what
 * the demo machine saves (docs/SNAPSHOT.md gives the order and why) and how a
 * fresh process rebuilds it. Every part is the owning package's plain-data
 * state; this file only orders them and names them in one document.
 */

import { readFileSync } from 'node:fs';
import { errnoError } from '@rxvmm/errno';
import type { EventFd, EventFdState } from '@rxvmm/eventfd';
import type { VmWiring } from '@rxvmm/kvm';
import type { LinuxVcpuState, LinuxVm, LinuxVmState, VcpuRunner } from '@rxvmm/kvm-linux';
import type { VirtioMmioTransportState } from '@rxvmm/virtio-mmio';
import type { DeviceServerState } from '@rxvmm/virtio-ring';
import type { BlockService } from './backends.js';
import { DEVICE_VECTOR } from './layout.js';

export const DEMO_SNAPSHOT_VERSION = 1;
/** The one memory slot of the demo machine, as the snapshot names it. */
export const RAM_SEGMENT = 'slot0';

/**
 * The moment a snapshot is taken at: `any` (pause the vCPU, then drain the device: whatever is
 * in flight), `doorbell` (a doorbell rung and not read: it waits in the kick eventfd's counter),
 * `interrupt` (a request completed and its interrupt signalled while the vCPU was stopped: it
 * waits in the local APIC).
 */
export type SnapshotMoment = 'any' | 'doorbell' | 'interrupt';

/** What the machine was started with (a restore takes them from here). */
export interface SnapshotMachine {
  requests: number;
  blockSize: number;
  ioeventfd: boolean;
  irqfd: boolean;
  disk: string;
  guestMode: 'normal' | 'bad-queue-addr' | 'bad-head';
}

/** The `state` of the demo's snapshot file. */
export interface DemoSnapshotState {
  version: typeof DEMO_SNAPSHOT_VERSION;
  machine: SnapshotMachine;
  wiring: VmWiring;
  vm: LinuxVmState;
  vcpu: LinuxVcpuState;
  /** Eventfds by role, with the descriptor number the wiring names them by. */
  eventfds: { kick: { fd: number; state: EventFdState }; call: { fd: number; state: EventFdState } };
  transport: VirtioMmioTransportState;
  device: DeviceServerState;
  /** What was pending at the moment (for the report and the tests). */
  pending: { doorbells: number; interrupt: boolean };
}

export interface SnapshotParts {
  vm: LinuxVm;
  runner: VcpuRunner;
  service: BlockService;
  kick: EventFd;
  call: EventFd;
  machine: SnapshotMachine;
  /** Stops the main thread reading the kick eventfd (so a doorbell stays in its counter). */
  stopReadingKicks(): void;
  /** The register file's state, from the vCPU worker (asked while the vCPU is paused). */
  transportState(): Promise<VirtioMmioTransportState>;
}

export interface TakenSnapshot {
  state: DemoSnapshotState;
  /** The guest RAM to save (the mapping itself: nothing writes it while vCPU and device are paused). */
  ram: Uint8Array;
  /** Pausing, draining and collecting, in ms (the file write is the caller's). */
  collectMs: number;
}

/** Polls `done` (cheap checks) until true or `ms` passed; false on timeout. */
async function until(done: () => boolean, ms = 5000): Promise<boolean> {
  const end = performance.now() + ms;
  while (!done()) {
    if (performance.now() > end) return false;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return true;
}

/** Pauses the machine at `moment` and collects every part, in the order docs/SNAPSHOT.md gives. */
export async function takeSnapshot(parts: SnapshotParts, moment: SnapshotMoment): Promise<TakenSnapshot> {
  const t0 = performance.now();
  const { runner, service, kick } = parts;
  if (moment === 'doorbell') {
    // The next doorbell stays in the kick eventfd: nobody reads it, and the device is drained.
    parts.stopReadingKicks();
    await service.pause();
    if (!(await until(() => kick.state().count !== '0')))
      throw errnoError('EIO', 'snapshot: the guest rang no doorbell within 5 s');
    await runner.pause();
  } else if (moment === 'interrupt') {
    // Hold the device, let the guest ring for its next request, stop the guest (asleep, waiting
    // for that request's interrupt), then let the device complete it: its interrupt waits in the
    // local APIC of a vCPU that is not running.
    await service.pause();
    if (!(await until(() => service.kicksWhilePaused > 0)))
      throw errnoError('EIO', 'snapshot: the guest rang no doorbell within 5 s');
    await runner.pause();
    service.resume();
    await service.pause(); // drains: the request completes and its interrupt is signalled
  } else {
    await runner.pause();
    await service.pause();
  }
  const vcpu = await runner.saveState();
  const transport = await parts.transportState();
  const ram = parts.vm.memoryRegions()[0]?.bytes;
  if (!ram) throw errnoError('EIO', 'snapshot: the VM has no RAM slot');
  const state: DemoSnapshotState = {
    version: DEMO_SNAPSHOT_VERSION,
    machine: parts.machine,
    wiring: parts.vm.wiring(),
    vm: parts.vm.state(),
    vcpu,
    eventfds: {
      kick: { fd: kick.fd, state: kick.state() },
      call: { fd: parts.call.fd, state: parts.call.state() },
    },
    transport,
    device: service.blk.state(),
    pending: { doorbells: Number(kick.state().count) + service.kicksWhilePaused, interrupt: false },
  };
  state.pending.interrupt = lapicRequested(vcpu, DEVICE_VECTOR);
  return { state, ram, collectMs: performance.now() - t0 };
}

/** Whether `vector` is requested (IRR bit set) in a saved local APIC page (IRR at 0x200, 8 × 32 bits, 16 apart). */
export function lapicRequested(vcpu: LinuxVcpuState, vector: number): boolean {
  if (!vcpu.lapic) return false;
  const page = Buffer.from(vcpu.lapic, 'base64');
  return ((page.readUInt32LE(0x200 + 16 * (vector >> 5)) >>> (vector & 31)) & 1) === 1;
}

/** The document's own fields, checked (each part is checked by its package when it is restored). */
export function checkDemoSnapshot(state: unknown): DemoSnapshotState {
  const s = state as Partial<DemoSnapshotState> | null;
  if (typeof s !== 'object' || s === null || s.version !== DEMO_SNAPSHOT_VERSION)
    throw errnoError('EINVAL', `not an rxvmm-demo snapshot (version ${DEMO_SNAPSHOT_VERSION})`);
  const m = s.machine as Partial<SnapshotMachine> | undefined;
  if (
    !m ||
    !Number.isSafeInteger(m.requests) ||
    !Number.isSafeInteger(m.blockSize) ||
    typeof m.ioeventfd !== 'boolean' ||
    typeof m.irqfd !== 'boolean' ||
    typeof m.disk !== 'string' ||
    (m.guestMode !== 'normal' && m.guestMode !== 'bad-queue-addr' && m.guestMode !== 'bad-head')
  )
    throw errnoError('EINVAL', 'rxvmm-demo snapshot: bad machine options');
  const fds = s.eventfds;
  if (!fds || !Number.isInteger(fds.kick?.fd) || !Number.isInteger(fds.call?.fd))
    throw errnoError('EINVAL', 'rxvmm-demo snapshot: bad eventfds');
  for (const key of ['wiring', 'vm', 'vcpu', 'transport', 'device', 'pending'] as const)
    if (typeof s[key] !== 'object' || s[key] === null)
      throw errnoError('EINVAL', `rxvmm-demo snapshot: no ${key} state`);
  return s as DemoSnapshotState;
}

/** "rxvmm-demo <version>", the snapshot's writer (this file is two levels below the package, as its bundle is). */
export function demoWriter(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return `rxvmm-demo ${pkg.version ?? ''}`.trim();
  } catch {
    return 'rxvmm-demo';
  }
}
