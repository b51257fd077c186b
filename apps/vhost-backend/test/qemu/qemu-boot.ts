// Boots the test guest under QEMU (TCG: stock kernels do not run on this nested /dev/kvm, see
// QEMU-NOTES) with a vhost-user-blk disk on `socket`, runs blkwork steps and collects the console.
// Guest RAM is a shared memfd, which is what lets a vhost-user back-end map it.
import { spawn } from 'node:child_process';
import { type ConsoleEvent, LineSplitter, parseConsoleLine, type StepResult } from './console.js';
import type { GuestImage } from './guest-image.js';

export interface BootOptions {
  image: GuestImage;
  /** The back-end's listening socket: the guest's /dev/vda. */
  socket: string;
  /** More vhost-user-blk disks, /dev/vdb, /dev/vdc, ... in this order (steps name them as STEP@/dev/vdb). */
  moreSockets?: string[];
  /** blkwork steps, e.g. ['write:0:8M:7', 'verify:0:8M:7']. */
  steps: string[];
  memoryMiB?: number;
  numQueues?: number;
  /** vCPUs (default 1); Linux's virtio-blk uses min(vCPUs, queues) queues. */
  cpus?: number;
  /** The whole run (boot, steps, power-off); QEMU is killed after it. */
  timeoutMs?: number;
  /** Kills QEMU (SIGKILL) when aborted: a frontend that vanishes mid-request. */
  signal?: AbortSignal;
  /** Called synchronously as each tagged console line arrives (the benchmark samples the back-end here). */
  onEvent?: (event: ConsoleEvent) => void;
  /** QEMU reconnects to a back-end that went away, trying every this many seconds (`-chardev ...,reconnect=N`). */
  reconnect?: number;
  /** `vhost-user-blk-pci,packed=on`: offer the guest packed virtqueues. */
  packed?: boolean;
  /** The guest prints its kernel log after the steps (`BootResult.kernelLog`). */
  kernelLog?: boolean;
}

export interface BootResult {
  console: string;
  /** What the guest saw: /dev/vda's size and whether it opened read-only. */
  device: { bytes: number; readOnly: boolean } | undefined;
  /** The same for every device the guest opened, by path. */
  devices: Map<string, { bytes: number; readOnly: boolean }>;
  /** blk-mq hardware queues of the guest's disk. */
  queues: number | undefined;
  /** The virtio features the guest accepted for /dev/vda (one 0/1 character per bit, bit 0 first). */
  features: string | undefined;
  /** The guest kernel's log (with `kernelLog`), `<priority>` first on each line. */
  kernelLog: string[];
  results: StepResult[];
  errors: string[];
  /** The guest's exit status from RXVMM-DONE; undefined when the guest never got there. */
  guestStatus: number | undefined;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  durationMs: number;
}

export function qemuArgs(o: BootOptions): string[] {
  const mem = o.memoryMiB ?? 512;
  const sockets = [o.socket, ...(o.moreSockets ?? [])];
  const names = sockets.map((_, i) => `/dev/vd${String.fromCharCode(97 + i)}`);
  // Fixed PCI slots in socket order: Linux probes by slot, so the n-th socket is the n-th vdX.
  const disks = sockets.flatMap((path, i) => [
    '-chardev',
    `socket,id=c${i},path=${path}${o.reconnect ? `,reconnect=${o.reconnect}` : ''}`,
    '-device',
    `vhost-user-blk-pci,chardev=c${i},num-queues=${o.numQueues ?? 1},addr=${(0x10 + i).toString(16)}${o.packed ? ',packed=on' : ''}`,
  ]);
  const wait = names.length > 1 ? ` rxvmm.wait=${names.slice(1).join(',')}` : '';
  const klog = o.kernelLog ? ' rxvmm.klog=1' : '';
  return [
    '-machine',
    'q35,accel=tcg',
    '-cpu',
    'max',
    '-smp',
    String(o.cpus ?? 1),
    '-m',
    `${mem}M`,
    '-nodefaults',
    '-no-user-config',
    '-object',
    `memory-backend-memfd,id=mem,size=${mem}M,share=on`,
    '-numa',
    'node,memdev=mem',
    ...disks,
    '-kernel',
    o.image.kernel,
    '-initrd',
    o.image.initrd,
    '-append',
    `console=ttyS0 panic=-1 quiet loglevel=3${wait}${klog} rxvmm.steps=${o.steps.join(',')}`,
    '-display',
    'none',
    '-serial',
    'stdio',
    '-monitor',
    'none',
    '-no-reboot',
  ];
}

export function bootGuest(o: BootOptions): Promise<BootResult> {
  const started = Date.now();
  const child = spawn('qemu-system-x86_64', qemuArgs(o), { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = new LineSplitter();
  const results: StepResult[] = [];
  const errors: string[] = [];
  let guestStatus: number | undefined;
  let device: BootResult['device'];
  const devices: BootResult['devices'] = new Map();
  let queues: number | undefined;
  let features: string | undefined;
  const kernelLog: string[] = [];
  let text = '';
  let timedOut = false;
  const handle = (line: string) => {
    const event = parseConsoleLine(line);
    if (!event) return;
    if (event.kind === 'result') results.push(event.result);
    else if (event.kind === 'error') errors.push(event.error);
    else if (event.kind === 'done') guestStatus = event.status;
    else if (event.kind === 'queues') queues = event.count;
    else if (event.kind === 'features') features = event.bits;
    else if (event.kind === 'klog') kernelLog.push(event.line);
    else if (event.kind === 'device') {
      devices.set(event.path, { bytes: event.bytes, readOnly: event.readOnly });
      if (event.path === '/dev/vda') device = devices.get(event.path);
    }
    o.onEvent?.(event);
  };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
    for (const line of lines.push(chunk)) handle(line);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, o.timeoutMs ?? 90_000);
  const kill = () => child.kill('SIGKILL');
  if (o.signal?.aborted) kill();
  o.signal?.addEventListener('abort', kill, { once: true });
  return new Promise((resolve) => {
    const finish = (exitCode: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', kill);
      for (const line of lines.flush()) handle(line);
      resolve({
        console: text,
        device,
        devices,
        queues,
        features,
        kernelLog,
        results,
        errors,
        guestStatus,
        exitCode,
        signal,
        timedOut,
        durationMs: Date.now() - started,
      });
    };
    child.on('error', (err) => {
      text += `\nspawn qemu-system-x86_64 failed: ${err.message}\n`;
      finish(-1, null);
    });
    child.on('close', finish);
  });
}

/** A short account of a run for assertion messages: the failure, then the console's tail. */
export function describeRun(r: BootResult): string {
  const tail = r.console.split('\n').slice(-25).join('\n');
  return `qemu exit=${r.exitCode} signal=${r.signal} timedOut=${r.timedOut} guestStatus=${r.guestStatus} errors=${JSON.stringify(r.errors)}\n--- console tail ---\n${tail}`;
}
