/** The human summary printed at the end of a run: the figures, then one sentence on what each means. */
import type { DemoReport } from './run.js';

function fixed(v: number, digits: number): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '-';
}

/** MMIO exits the guest cannot avoid per request: per transfer (2), the handler's InterruptStatus read and InterruptACK write. */
const HANDLER_EXITS_PER_REQUEST = 4;
/** The doorbells (QueueNotify writes) per request, which exit when no ioeventfd absorbs them. */
const DOORBELLS_PER_REQUEST = 2;

/** The MMIO exits per request this device path cannot go below. */
export function mmioExitFloor(r: Pick<DemoReport, 'ioeventfd'>): number {
  return HANDLER_EXITS_PER_REQUEST + (r.ioeventfd ? 0 : DOORBELLS_PER_REQUEST);
}

/** The table rows: figure, value. */
function figures(r: DemoReport): [string, string][] {
  const path = r.vhostUser
    ? `vhost-user back-end at ${r.vhostUser}`
    : `${r.ioeventfd ? 'ioeventfd' : 'doorbell exits to the VMM'}, ${r.irqfd ? 'irqfd' : 'KVM_IRQ_LINE from the VMM'}`;
  return [
    ['backend', r.backend === 'kvm' ? 'kvm (/dev/kvm)' : 'soft (SoftKvm, TypeScript guest)'],
    ['device path', path],
    ['requests verified', `${r.verified} / ${r.requests} (write + read back each)`],
    ['bytes through the device', `${r.bytes}`],
    ['guest run time', `${fixed(r.seconds, 3)} s`],
    ['µs per request', fixed(r.usPerRequest, 1)],
    [
      'exits',
      `${r.exits.total} (mmio ${r.exits.mmio}, io ${r.exits.io}, hlt ${r.exits.hlt}, intr ${r.exits.intr}, other ${r.exits.other})`,
    ],
    ['exits per request', fixed(r.exitsPerRequest, 2)],
    ['ioeventfd signals', `${r.ioeventfdSignals}`],
    ['irqfd injections', `${r.irqfdInjections}`],
    ['KVM_IRQ_LINE injections', `${r.irqLineInjections}`],
    ['guest interrupts taken', `${r.guestInterrupts}`],
    ['start-up (process → guest HELLO)', r.startupMs === null ? '-' : `${fixed(r.startupMs, 1)} ms`],
    [
      'first device access (process → guest’s first register access)',
      r.firstDeviceAccessMs === null ? '-' : `${fixed(r.firstDeviceAccessMs, 1)} ms`,
    ],
    ['peak RSS', `${fixed(r.peakRssMiB, 1)} MiB (guest RAM ${r.guestRamMiB} MiB)`],
    ['device status', `0x${r.deviceStatus.toString(16)}${r.needsReset ? ' (DEVICE_NEEDS_RESET)' : ''}`],
    ...snapshotFigures(r),
    [
      'result',
      r.ok
        ? r.snapshot
          ? `OK: snapshot after ${r.verified} verified requests`
          : 'OK: every request verified'
        : `FAILED: ${r.error}`,
    ],
  ];
}

/** --snapshot-after / --restore rows. */
function snapshotFigures(r: DemoReport): [string, string][] {
  const rows: [string, string][] = [];
  if (r.snapshot)
    rows.push(
      ['snapshot', `${r.snapshot.path}, ${r.snapshot.bytes} bytes`],
      ['snapshot save time', `${fixed(r.snapshot.saveMs, 1)} ms (pause guest and device, collect, write)`],
      [
        'pending at the snapshot',
        `${r.snapshot.pendingDoorbells} doorbell(s) not served, interrupt ${r.snapshot.pendingInterrupt ? 'signalled and not taken' : 'none'}`,
      ],
    );
  if (r.restore)
    rows.push(
      ['restored from', `${r.restore.path}, ${r.restore.bytes} bytes`],
      ['restore (process → next guest instruction)', `${fixed(r.restore.resumeMs, 1)} ms`],
    );
  return rows;
}

/** One sentence per figure: what it counts and what to compare it with. */
export function explainFigures(r: DemoReport): [string, string][] {
  const verified = Math.max(r.verified, 1);
  const mmioPerRequest = (r.exits.mmio ?? 0) / verified;
  const floor = mmioExitFloor(r);
  const setupExits = Math.max(0, (r.exits.mmio ?? 0) - floor * r.verified);
  const soft = r.backend === 'soft';
  return [
    [
      'backend',
      soft
        ? 'SoftKvm: the kernel mechanisms (io bus, ioeventfd, irqfd, APIC) rebuilt in TypeScript, and the guest a TypeScript program making the same register accesses in the same order as the x86 guest on /dev/kvm.'
        : '/dev/kvm: the guest is x86 code running on the CPU; the kernel absorbs doorbells (ioeventfd) and injects interrupts (irqfd) itself.',
    ],
    [
      'device path',
      r.vhostUser
        ? 'the queue is served by a vhost-user back-end in another process, which reads the kick eventfd and writes the call eventfd itself: the VMM only runs the device registers.'
        : `how a doorbell reaches the device and a completion the guest: ${r.ioeventfd ? 'the ioeventfd turns the guest’s QueueNotify write into an eventfd signal without an exit' : 'each QueueNotify write exits to the VMM, which signals the device'}, and ${r.irqfd ? 'the device’s eventfd write becomes an interrupt through the irqfd' : 'the VMM injects each interrupt with the KVM_IRQ_LINE ioctl'}.`,
    ],
    [
      'requests verified',
      `a request is one write of a pattern to the disk and its read-back, compared byte for byte by the guest itself.`,
    ],
    ['bytes through the device', 'every write and every read: 2 × requests × block size.'],
    [
      'guest run time',
      soft
        ? 'from the guest’s first instruction (its HELLO port write) to its DONE: process and VM start-up are not in it.'
        : 'from the guest’s first instruction (its HELLO port write) to its DONE: process and VM start-up are not in it, but a wait for the vCPU worker at the guest’s first device access can be (the guest starts on the main thread while that worker boots).',
    ],
    [
      'µs per request',
      soft
        ? 'guest run time / requests; SoftKvm has no hypervisor in the way (an exit is a function return, a doorbell a function call), so on a nested or loaded machine it can show fewer µs than /dev/kvm: the figure measures this machine, the exit counts measure the device path.'
        : 'guest run time / requests; each exit and interrupt crosses the host kernel (on a nested machine two hypervisors, tens of µs each) and the guest’s own pattern work runs slower nested too, which is why SoftKvm can show fewer µs per request here: the figure measures this machine, the exit counts measure the device path.',
    ],
    [
      'exits',
      `times the vCPU left the guest for the VMM: mmio = device-register accesses the kernel did not absorb, io = HELLO and DONE${soft ? ', intr = the guest’s sleeps in hlt handed back to the VMM’s event loop (SoftKvm only; on /dev/kvm the kernel sleeps it)' : ''}.`,
    ],
    [
      'exits per request',
      `MMIO exits per request were ${fixed(mmioPerRequest, 2)} against a floor of ${floor} (per transfer, the interrupt handler’s InterruptStatus read and InterruptACK write${r.ioeventfd ? '; the doorbells stay in the kernel' : ', plus the two doorbells that exit without ioeventfd'}); the ${setupExits} above it are the driver’s set-up, spread over the requests${soft ? `; SoftKvm adds ${fixed((r.exits.intr ?? 0) / verified, 2)} intr exits per request (the sleeps)` : ''}.`,
    ],
    [
      'ioeventfd signals',
      r.vhostUser
        ? 'the back-end process consumes the doorbells itself, so the VMM counts none.'
        : 'doorbells the ioeventfd delivered to the device without an exit: 2 per request, 0 with --no-ioeventfd.',
    ],
    [
      'irqfd injections',
      'completions signalled on the irqfd’s eventfd, each injected by the kernel as an MSI: 2 per request, 0 with --no-irqfd.',
    ],
    [
      'KVM_IRQ_LINE injections',
      'completions the VMM injected itself with an ioctl (--no-irqfd): 2 per request.',
    ],
    [
      'guest interrupts taken',
      'times the guest’s interrupt handler ran: one per completion, so 2 per request.',
    ],
    [
      'start-up',
      soft
        ? 'process start to the guest’s first instruction: Node’s own start, loading the VMM’s modules and the VM set-up.'
        : 'process start to the guest’s first instruction: Node’s own start, loading the VMM’s modules and the VM set-up; the guest starts on the main thread while Node boots the vCPU worker, which takes the vCPU over at its first device access.',
    ],
    [
      'first device access',
      soft
        ? 'process start to the guest’s first access to the device’s registers: the start-up and the guest’s own start (page tables, interrupts).'
        : 'process start to the guest’s first access to the device’s registers: the guest’s own start (page tables, interrupts) overlaps the vCPU worker’s boot, and this access is answered on that worker.',
    ],
    ['peak RSS', 'the whole process’s peak resident memory, guest RAM included.'],
    [
      'device status',
      'the virtio status register at the end: 0xf = ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK; 0x40 (DEVICE_NEEDS_RESET) means the device refused what the guest put in its ring.',
    ],
  ];
}

/** Wraps `text` at `width` columns, each line after the first indented by `indent`. */
function wrap(text: string, width: number, indent: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines.join(`\n${indent}`);
}

/** The human-readable summary `rxvmm-demo` prints: each figure with a sentence saying what it means. */
export function formatSummary(r: DemoReport): string {
  const rows = figures(r);
  const width = Math.max(...rows.map(([k]) => k.length));
  const table = rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n');
  const notes = explainFigures(r);
  const noteWidth = Math.max(...notes.map(([k]) => k.length));
  const indent = ' '.repeat(noteWidth + 4);
  const explained = notes
    .map(([k, sentence]) => `  ${k.padEnd(noteWidth)}  ${wrap(sentence, 100 - indent.length, indent)}`)
    .join('\n');
  return `${table}\n\nWhat the figures mean:\n${explained}`;
}
