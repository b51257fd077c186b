/**
 * Command-line options of `rxvmm-demo`, parsed with node:util's parseArgs
 * (strict: an unknown flag is an error with a usage hint, never ignored).
 */
import { parseArgs } from 'node:util';

export type BackendChoice = 'auto' | 'kvm' | 'soft';

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
}

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
  --json                   print one JSON object on stdout and nothing else
  -h, --help               this text
`;

/** A usage error: the CLI prints the message and the usage hint, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

const MAX_BLOCK_SIZE = 1 << 20;

function positiveInteger(flag: string, text: string, max: number): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag} wants a whole number, got '${text}'`);
  const value = Number(text);
  if (value < 1 || value > max) throw new UsageError(`${flag} must be between 1 and ${max}, got ${value}`);
  return value;
}

export function parseOptions(argv: readonly string[]): DemoOptions {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values } = parsed;
  const backend = values.backend ?? 'auto';
  if (backend !== 'auto' && backend !== 'kvm' && backend !== 'soft')
    throw new UsageError(`--backend must be auto, kvm or soft, got '${backend}'`);
  const guestMode = values['guest-mode'] ?? 'normal';
  if (guestMode !== 'normal' && guestMode !== 'bad-queue-addr' && guestMode !== 'bad-head')
    throw new UsageError(`--guest-mode must be normal, bad-queue-addr or bad-head, got '${guestMode}'`);
  const blockSize = positiveInteger('--block-size', values['block-size'] ?? '4096', MAX_BLOCK_SIZE);
  if (blockSize % 512 !== 0) throw new UsageError(`--block-size must be a multiple of 512, got ${blockSize}`);
  return {
    backend,
    disk: values.disk,
    requests: positiveInteger('--requests', values.requests ?? '256', 1_000_000),
    blockSize,
    ioeventfd: !values['no-ioeventfd'],
    irqfd: !values['no-irqfd'],
    vhostUser: values['vhost-user'],
    json: values.json ?? false,
    help: values.help ?? false,
    guestMode,
  };
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      backend: { type: 'string' },
      disk: { type: 'string' },
      requests: { type: 'string' },
      'block-size': { type: 'string' },
      'no-ioeventfd': { type: 'boolean' },
      'no-irqfd': { type: 'boolean' },
      'vhost-user': { type: 'string' },
      'guest-mode': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
