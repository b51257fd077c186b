/**
 * Command-line options of `rxvmm-demo`, parsed with node:util's parseArgs
 * (strict: an unknown flag is an error with a usage hint, never ignored;
 * every error one line, see cli-args.ts).
 */
import { parseArgs } from 'node:util';
import { integerOption, parseCommandLine, UsageError } from './cli-args.js';

export { UsageError } from './cli-args.js';

export type BackendChoice = 'auto' | 'kvm' | 'soft';

/** What `rxvmm-demo` runs: the parsed command line (`parseOptions`). */
export interface DemoOptions {
  backend: BackendChoice;
  /** Disk image; undefined: a temporary image created and removed by the demo. */
  disk: string | undefined;
  requests: number;
  blockSize: number;
  ioeventfd: boolean;
  irqfd: boolean;
  vhostUser: string | undefined;
  json: boolean;
  help: boolean;
  /** Test guests that misprogram the device (hidden from --help's main list). */
  guestMode: 'normal' | 'bad-queue-addr' | 'bad-head';
  /** Pause after this many verified requests and write a snapshot to `snapshot` (kvm only). */
  snapshotAfter: number | undefined;
  snapshot: string | undefined;
  /** The moment the snapshot catches (tests): any, a doorbell not yet read, an interrupt not yet taken. */
  snapshotAt: 'any' | 'doorbell' | 'interrupt';
  /** Resume the machine saved in this snapshot file (its options come from the file). */
  restore: string | undefined;
  /** --restore: map the memory privately from the file (lazy, copy-on-write) or copy it into memfd RAM. */
  restoreMemory: 'private' | 'copy';
  /** --restore: hash the memory section against the header before anything is made (default on). */
  verifyMemory: boolean;
}

/** The `--help` text. */
export const USAGE = `Usage: rxvmm-demo [options]

Runs a guest that writes a pattern to a virtio-blk disk, reads it back and
verifies it, with the guest's doorbells absorbed by ioeventfd and completions
injected by irqfd, so the VMM stays out of the data path.

Options:
  --backend auto|kvm|soft  kvm: /dev/kvm; soft: the pure-TypeScript SoftKvm;
                           auto (default): kvm when /dev/kvm is usable
  --disk FILE              disk image (default: a temporary image, removed after)
  --requests N             write+read-back pairs (default 256)
  --block-size BYTES       bytes per request, a multiple of 512 (default 4096)
  --no-ioeventfd           doorbells exit to the VMM, which handles them
  --no-irqfd               the VMM injects interrupts with KVM_IRQ_LINE itself
  --vhost-user SOCKET      serve the queues by a vhost-user back-end at SOCKET
  --guest-mode MODE        normal (default), bad-queue-addr, bad-head (test guests)
  --snapshot-after N       pause after N verified requests, save the VM to the
                           --snapshot FILE and exit (kvm; needs --disk)
  --snapshot FILE          where --snapshot-after writes the snapshot
  --snapshot-at MOMENT     any (default), doorbell, interrupt (tests)
  --restore FILE           resume a saved VM in this process; it finishes the
                           remaining requests (its options come from FILE)
  --restore-memory HOW     private (default): map the file's memory copy-on-write,
                           read as the guest touches it; copy: into memfd RAM
  --no-verify-memory       --restore skips the memory's sha256 (faster; a damaged
                           memory section goes unnoticed)
  --json                   print one JSON object on stdout and nothing else
  -h, --help               this text
`;

const MAX_BLOCK_SIZE = 1 << 20;
const MAX_REQUESTS = 1_000_000;

function positiveInteger(flag: string, text: string, max: number): number {
  const shown = text.trim();
  return integerOption(text, 1, max, (why) =>
    why === 'not-integer'
      ? `${flag} wants a whole number between 1 and ${max}, got '${text}'`
      : `${flag} must be between 1 and ${max}, got ${shown}`,
  );
}

const OPTIONS = {
  backend: { type: 'string' },
  disk: { type: 'string' },
  requests: { type: 'string' },
  'block-size': { type: 'string' },
  'no-ioeventfd': { type: 'boolean' },
  'no-irqfd': { type: 'boolean' },
  'vhost-user': { type: 'string' },
  'guest-mode': { type: 'string' },
  'snapshot-after': { type: 'string' },
  snapshot: { type: 'string' },
  'snapshot-at': { type: 'string' },
  restore: { type: 'string' },
  'restore-memory': { type: 'string' },
  'no-verify-memory': { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Options whose value is a number: `--requests -1` is a value (refused by the range check). */
const NUMERIC = new Set(['--requests', '--block-size', '--snapshot-after']);

/** Parses `rxvmm-demo`'s arguments; a usage error throws with the message the CLI prints. */
export function parseOptions(argv: readonly string[]): DemoOptions {
  const { values } = parseCommandLine(argv, 'rxvmm-demo', NUMERIC, (args) =>
    parseArgs({ args, strict: true, allowPositionals: false, options: OPTIONS }),
  );
  const backend = values.backend ?? 'auto';
  if (backend !== 'auto' && backend !== 'kvm' && backend !== 'soft')
    throw new UsageError(`--backend must be auto, kvm or soft, got '${backend}'`);
  const guestMode = values['guest-mode'] ?? 'normal';
  if (guestMode !== 'normal' && guestMode !== 'bad-queue-addr' && guestMode !== 'bad-head')
    throw new UsageError(`--guest-mode must be normal, bad-queue-addr or bad-head, got '${guestMode}'`);
  const blockSize = positiveInteger('--block-size', values['block-size'] ?? '4096', MAX_BLOCK_SIZE);
  if (blockSize % 512 !== 0) throw new UsageError(`--block-size must be a multiple of 512, got ${blockSize}`);
  const requests = positiveInteger('--requests', values.requests ?? '256', MAX_REQUESTS);
  // SoftKvm's RAM is a SharedArrayBuffer: there is no memfd for a back-end in another process to map.
  if (values['vhost-user'] !== undefined && backend === 'soft')
    throw new UsageError(
      '--vhost-user needs --backend kvm (or auto on a machine with /dev/kvm): a vhost-user back-end maps guest RAM from a memfd, which SoftKvm does not have',
    );
  const snapshotAt = values['snapshot-at'] ?? 'any';
  if (snapshotAt !== 'any' && snapshotAt !== 'doorbell' && snapshotAt !== 'interrupt')
    throw new UsageError(`--snapshot-at must be any, doorbell or interrupt, got '${snapshotAt}'`);
  const snapshotAfter =
    values['snapshot-after'] === undefined
      ? undefined
      : positiveInteger('--snapshot-after', values['snapshot-after'], MAX_REQUESTS);
  checkSnapshotOptions(values, backend, requests, snapshotAfter);
  const restoreMemory = values['restore-memory'] ?? 'private';
  if (restoreMemory !== 'private' && restoreMemory !== 'copy')
    throw new UsageError(`--restore-memory must be private or copy, got '${restoreMemory}'`);
  return {
    backend,
    disk: values.disk,
    requests,
    blockSize,
    ioeventfd: !values['no-ioeventfd'],
    irqfd: !values['no-irqfd'],
    vhostUser: values['vhost-user'],
    json: values.json ?? false,
    help: values.help ?? false,
    guestMode,
    snapshotAfter,
    snapshot: values.snapshot,
    snapshotAt,
    restore: values.restore,
    restoreMemory,
    verifyMemory: !values['no-verify-memory'],
  };
}

/** The rules of --snapshot-after / --snapshot / --restore (docs/SNAPSHOT.md). */
function checkSnapshotOptions(
  values: Record<string, string | boolean | undefined>,
  backend: BackendChoice,
  requests: number,
  snapshotAfter: number | undefined,
): void {
  const saving = snapshotAfter !== undefined || values.snapshot !== undefined;
  if (saving) {
    if (snapshotAfter === undefined || values.snapshot === undefined)
      throw new UsageError('--snapshot-after N and --snapshot FILE go together');
    if (values.restore !== undefined)
      throw new UsageError('--restore resumes a snapshot; it does not take one');
    if (snapshotAfter >= requests)
      throw new UsageError(
        `--snapshot-after ${snapshotAfter} must be below --requests ${requests} (the guest would be done)`,
      );
  } else if (values['snapshot-at'] !== undefined)
    throw new UsageError('--snapshot-at goes with --snapshot-after');
  if (values.restore === undefined && (values['restore-memory'] !== undefined || values['no-verify-memory']))
    throw new UsageError('--restore-memory and --no-verify-memory go with --restore');
  if (!saving && values.restore === undefined) return;
  if (backend === 'soft')
    throw new UsageError(
      "snapshots need --backend kvm: SoftKvm's guest is a TypeScript program (a generator), whose position cannot be saved",
    );
  if (values['vhost-user'] !== undefined)
    throw new UsageError('snapshots do not cover a vhost-user back-end (its rings live in another process)');
  if (saving && values.disk === undefined)
    throw new UsageError(
      '--snapshot-after needs --disk FILE: the restored guest reads back what it wrote there',
    );
  if (values.restore !== undefined) {
    const fromFile = ['disk', 'requests', 'block-size', 'no-ioeventfd', 'no-irqfd', 'guest-mode'].filter(
      (k) => values[k] !== undefined,
    );
    if (fromFile.length > 0)
      throw new UsageError(
        `--restore takes the machine from the snapshot: leave out --${fromFile.join(', --')}`,
      );
  }
}
