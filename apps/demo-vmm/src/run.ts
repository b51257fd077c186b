/**
 * `runDemo`: the library entry point behind the CLI. Picks the backend,
 * prepares the disk, runs the machine and turns what it saw into a report.
 */
import { kvmAvailability } from '@rxvmm/kvm-linux';
import type { PreparedVcpu } from '@rxvmm/kvm-linux/prepare';
import { prepareDisk } from './disk.js';
import { FAIL_REASONS, ResultStatus } from './guest/abi.js';
import type { DemoOptions } from './options.js';
import { SetupError } from './setup-error.js';
import { checkDemoSnapshot, demoWriter } from './vmm/kvm-snapshot.js';
import type { MachineOptions, MachineRun } from './vmm/machine.js';
import { prepareVcpu } from './vmm/prepare-vcpu.js';

/** What one `runDemo` measured and checked (the CLI's `--json` output). */
export interface DemoReport {
  backend: 'kvm' | 'soft';
  requests: number;
  verified: number;
  /** Bytes moved through the device (every write and every read). */
  bytes: number;
  /** Guest HELLO to DONE. */
  seconds: number;
  exits: MachineRun['exits'];
  ioeventfdSignals: number;
  irqfdInjections: number;
  irqLineInjections: number;
  /** Kick eventfd counter values the back-end consumed (ioeventfd's, or the VMM's own writes). */
  kicks: number;
  /** Interrupts the guest's handler took. */
  guestInterrupts: number;
  usPerRequest: number;
  exitsPerRequest: number;
  startupMs: number | null;
  /**
   * Process start → the guest's first access to the device, in ms (null after a restore). On /dev/kvm
   * the guest starts on the main thread while the vCPU worker boots; this is when that worker (or,
   * on SoftKvm, the main thread) met the device access that ended the guest's start.
   */
  firstDeviceAccessMs: number | null;
  /** When this process started (`performance.timeOrigin`, ms since the epoch): the origin of startupMs. */
  processStartMs: number;
  peakRssMiB: number;
  guestRamMiB: number;
  ioeventfd: boolean;
  irqfd: boolean;
  vhostUser: string | null;
  guestMode: DemoOptions['guestMode'];
  /** virtio Status register at the end (0x40 = DEVICE_NEEDS_RESET). */
  deviceStatus: number;
  needsReset: boolean;
  /** --snapshot-after: the file, its size, the time to pause and save, what was pending in it. */
  snapshot: MachineRun['snapshot'] | null;
  /** --restore: the file, its size, and process start → the resumed guest's next instruction (ms). */
  restore: MachineRun['restore'] | null;
  ok: boolean;
  /** Why the run failed, for the user (null when ok). */
  error: string | null;
}

/**
 * What `--json` prints when there is no run to report: a usage error, or a failure before the
 * guest ran (an unusable disk, TMPDIR, /dev/kvm or vhost-user socket). `ok` is false either way.
 */
export interface DemoFailure {
  ok: false;
  /** The message, as on stderr. */
  error: string;
  /** The errno name (ENOENT, EACCES, ...) or 'USAGE'; null when there is none. */
  code: string | null;
  /** The process exit code: 2 usage, 1 anything else, 130 interrupted. */
  exitCode: number;
  /** The backend, once chosen. */
  backend: 'kvm' | 'soft' | null;
}

/** Why auto picked what it picked (for stderr). */
export interface BackendChoice {
  backend: 'kvm' | 'soft';
  reason: string;
}

/** Which backend `--backend` means here (`auto`: `/dev/kvm` when it opens, else SoftKvm), and why. */
export function chooseBackend(requested: DemoOptions['backend']): BackendChoice {
  if (requested === 'soft') return { backend: 'soft', reason: 'requested' };
  if (requested === 'kvm') return { backend: 'kvm', reason: 'requested' };
  const a = kvmAvailability();
  return a.available
    ? { backend: 'kvm', reason: '/dev/kvm is usable' }
    : { backend: 'soft', reason: `/dev/kvm is not usable (${a.reason})` };
}

const NEEDS_RESET = 0x40;

/** Runs the demo machine: boots the guest, serves its virtio-blk requests, verifies what it read, and reports. */
export async function runDemo(
  options: DemoOptions,
  hooks: {
    onBackend?: (choice: BackendChoice) => void;
    onProgress?: (verified: number, completed: number) => void;
    signal?: AbortSignal;
    /**
     * A vCPU worker started before (`prepareEarly`): used if the run is on /dev/kvm, else ended.
     * Without one, a kvm run starts its worker here.
     */
    prepared?: PreparedVcpu;
  } = {},
): Promise<DemoReport> {
  // --restore: the file is opened and checked whole before anything is made; the machine's
  // options (requests, block size, ioeventfd/irqfd, disk) come from it.
  await using snap =
    options.restore === undefined
      ? undefined
      : await (await import('@rxvmm/snapshot')).openSnapshot(options.restore, {
          verifyMemory: options.verifyMemory,
        });
  if (snap) options = { ...options, ...checkDemoSnapshot(snap.state).machine, backend: options.backend };
  const choice = chooseBackend(options.backend);
  hooks.onBackend?.(choice);
  if (snap && choice.backend !== 'kvm')
    throw new SetupError(`--restore needs the kvm backend: ${choice.reason}`, 'ENODEV');
  // (parseOptions makes --backend soft with --vhost-user a usage error; here auto fell back to SoftKvm.)
  if (options.vhostUser !== undefined && choice.backend !== 'kvm')
    throw new SetupError(
      `--vhost-user needs the kvm backend (a vhost-user back-end maps guest RAM from a memfd), but ${options.backend === 'soft' ? '--backend soft was asked for' : choice.reason}`,
      'ENODEV',
    );
  // Node boots the vCPU worker (and it loads the exit handler) while the disk and the VM are set up:
  // the longest step before the guest's first instruction. Ended here if it is never started.
  const early = hooks.prepared?.pending ? hooks.prepared : undefined;
  if (early && choice.backend !== 'kvm') early[Symbol.dispose]();
  using prepared = choice.backend === 'kvm' ? (early ?? prepareVcpu()) : undefined;
  using disk = prepareDisk(options.disk, options.requests, options.blockSize);
  const machineOptions: MachineOptions = {
    diskPath: disk.path,
    requests: options.requests,
    blockSize: options.blockSize,
    ioeventfd: options.ioeventfd,
    irqfd: options.irqfd,
    vhostUser: options.vhostUser,
    guestMode: options.guestMode,
    ...(hooks.onProgress ? { onProgress: hooks.onProgress } : {}),
    ...(hooks.signal ? { signal: hooks.signal } : {}),
    ...(options.snapshotAfter !== undefined && options.snapshot !== undefined
      ? {
          snapshot: {
            after: options.snapshotAfter,
            path: options.snapshot,
            at: options.snapshotAt,
            writer: demoWriter(),
          },
        }
      : {}),
    ...(snap ? { restore: snap, restoreMemory: options.restoreMemory } : {}),
  };
  const run =
    choice.backend === 'kvm'
      ? await (await import('./vmm/kvm-machine.js')).runOnKvm(machineOptions, prepared)
      : await (await import('./vmm/soft-machine.js')).runOnSoft(machineOptions);
  return report(options, run);
}

function report(options: DemoOptions, run: MachineRun): DemoReport {
  const r = run.results;
  const verified = Number(r.verified);
  const completed = Number(r.completed);
  const needsReset = (run.deviceStatus & NEEDS_RESET) !== 0;
  const ok =
    run.end === 'snapshot' ||
    (run.end === 'done' && r.status === ResultStatus.ok && verified === options.requests);
  let error: string | null = null;
  if (!ok) {
    if (r.status === ResultStatus.failed) {
      const why = FAIL_REASONS[Number(r.failCode)] ?? `failure code ${r.failCode}`;
      error = `the guest gave up: ${why} (detail ${r.failDetail})`;
      if (run.deviceFailure) error += `; device: ${run.deviceFailure}`;
    } else if (run.end === 'aborted') error = 'interrupted before the guest finished';
    else if (run.end === 'stalled') error = 'the guest made no progress for 20 s (stalled)';
    else if (run.end !== 'done') error = `the vCPU stopped before the guest finished (${run.end})`;
    else error = `only ${verified} of ${options.requests} requests were verified`;
  }
  // Per verified request (a write and its read-back); 0 when none was verified.
  const per = (v: number) => (verified > 0 ? v / verified : 0);
  return {
    backend: run.backend,
    requests: options.requests,
    verified,
    bytes: completed * options.blockSize,
    seconds: run.seconds,
    exits: run.exits,
    ioeventfdSignals: run.ioeventfdSignals,
    irqfdInjections: run.irqfdInjections,
    irqLineInjections: run.irqLineInjections,
    kicks: run.kicks,
    guestInterrupts: Number(r.interrupts),
    usPerRequest: per(run.seconds * 1e6),
    exitsPerRequest: per(run.exits.total),
    startupMs: run.startupMs ?? null,
    firstDeviceAccessMs: run.firstDeviceAccessMs ?? null,
    processStartMs: performance.timeOrigin,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    guestRamMiB: run.guestRamBytes / (1 << 20),
    ioeventfd: options.ioeventfd,
    irqfd: options.irqfd,
    vhostUser: options.vhostUser ?? null,
    guestMode: options.guestMode,
    deviceStatus: run.deviceStatus,
    needsReset,
    snapshot: run.snapshot ?? null,
    restore: run.restore ?? null,
    ok,
    error,
  };
}
