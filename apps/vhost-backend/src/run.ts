/**
 * rxvmm-vhost-blk, following the back-end program conventions of QEMU's
 * docs/interop/vhost-user.rst: --socket-path or --fd, --print-capabilities,
 * --blk-file, --read-only; plus --num-queues, --io, --require-sealed,
 * --json-stats and (testing) --delay-completions. It serves one
 * frontend at a time, survives reconnects, and on SIGINT/SIGTERM ends the
 * session, flushes the disk and removes its socket file.
 */
import { parseArgs } from 'node:util';
import { VhostUserServer } from '@rxvmm/vhost-user';
import type { BlockDevice } from '@rxvmm/virtio-blk';
import { openBlkDevice } from './blk-device.js';
import { integerOption, parseCommandLine, UsageError } from './cli-args.js';

/** The `--help` text of `rxvmm-vhost-blk`. */
export const USAGE = `Usage: rxvmm-vhost-blk (--socket-path PATH | --fd N) --blk-file FILE [options]
       rxvmm-vhost-blk --print-capabilities

A vhost-user-blk back-end (QEMU: -device vhost-user-blk-pci,chardev=...).

  --socket-path PATH      listen on a new Unix socket at PATH (removed on exit); only a stale
                          socket (nobody listening) already at PATH is replaced, anything else
                          there is an error (exit 2) and is left untouched
  --fd N                  serve the inherited socket N instead: a listening socket, or a
                          socket already connected to the frontend (then exit when it leaves)
  --blk-file FILE         disk image (regular file or block device; never created)
  --read-only             refuse writes (offers VIRTIO_BLK_F_RO)
  --num-queues N          virtqueues offered (default 1)
  --io sync|async         file I/O on the loop thread (default) or on the libuv threadpool
  --require-sealed        refuse guest memory whose fd is not sealed against shrinking
                          (F_SEAL_SHRINK; QEMU's memory-backend-memfd seals by default)
  --json-stats            print one JSON line of statistics per session and at exit (stdout)
  --delay-completions MS  testing: report each request done after a pseudo-random 0..MS ms,
                          so requests complete out of order (crash-recovery tests)
  --print-capabilities    print the back-end's capabilities as JSON and exit
  -h, --help              this text
`;

/** The --print-capabilities answer (vhost-user.json: VHostUserBackendCapabilitiesBlock). */
export const CAPABILITIES = { type: 'block', features: ['read-only', 'blk-file'] };

/** Where the CLI writes (the tests capture it). */
export interface CliIo {
  /** Standard output. */
  out(text: string): void;
  /** Standard error. */
  err(text: string): void;
}

const defaultIo: CliIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

/** A started back-end: the server, the disk, and how to stop it. */
export interface RunningBackend {
  server: VhostUserServer;
  device: BlockDevice;
  /** Ends the session, flushes and closes the disk, removes the socket. */
  shutdown(reason: string): Promise<void>;
  /** Resolves when there is nothing left to serve: `--fd` was a connected socket and its frontend left (or shutdown). */
  finished: Promise<void>;
}

/** Parses argv; returns an exit code for immediate exits, or the running back-end. */
export async function run(argv: string[], io: CliIo = defaultIo): Promise<number | RunningBackend> {
  // A usage error: one line and where to look, as rxvmm-demo does (not the whole usage text).
  const usage = (why: string): number => {
    io.err(`rxvmm-vhost-blk: ${why}\nTry 'rxvmm-vhost-blk --help'.\n`);
    return 2;
  };
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse(argv).values;
  } catch (error) {
    if (error instanceof UsageError) return usage(error.message);
    throw error;
  }
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  if (values['print-capabilities']) {
    io.out(`${JSON.stringify(CAPABILITIES, null, 2)}\n`);
    return 0;
  }
  if ((values['socket-path'] === undefined) === (values.fd === undefined))
    return usage('exactly one of --socket-path and --fd is required');
  if (values['blk-file'] === undefined) return usage('--blk-file is required');
  let fd: number | undefined;
  let numQueues: number;
  let delayCompletionsMs: number | undefined;
  try {
    const given = values.fd;
    fd =
      given === undefined
        ? undefined
        : integerOption(given, 0, FD_MAX, () => `--fd ${given} is not an fd number (0..${FD_MAX})`);
    const queues = values['num-queues'] ?? '1';
    numQueues = integerOption(queues, 1, 64, () => `--num-queues ${queues} must be 1..64`);
    const delay = values['delay-completions'];
    delayCompletionsMs =
      delay === undefined
        ? undefined
        : integerOption(
            delay,
            1,
            60_000,
            () => `--delay-completions ${delay} must be 1..60000 (milliseconds)`,
          );
  } catch (error) {
    if (error instanceof UsageError) return usage(error.message);
    throw error;
  }

  const ioMode = values.io ?? 'sync';
  if (ioMode !== 'sync' && ioMode !== 'async') return usage(`--io ${ioMode} must be sync or async`);
  let device: BlockDevice;
  try {
    device = await openBlkDevice({
      path: values['blk-file'],
      readOnly: values['read-only'] ?? false,
      numQueues,
      io: ioMode,
      ...(delayCompletionsMs === undefined ? {} : { delayCompletionsMs }),
    });
  } catch (error) {
    io.err(`rxvmm-vhost-blk: cannot open ${values['blk-file']}: ${diskProblem(values['blk-file'], error)}\n`);
    return 1;
  }
  const log = (line: string): void => io.err(`rxvmm-vhost-blk: ${line}\n`);
  const jsonStats = values['json-stats'] ?? false;
  const statsLine = (event: string, extra: object = {}): void => {
    if (jsonStats) io.out(`${JSON.stringify({ event, ...extra, blk: device.stats })}\n`);
  };
  let server: VhostUserServer;
  try {
    server = new VhostUserServer(device, {
      ...(fd === undefined ? { socketPath: values['socket-path'] as string } : { fd }),
      requireSealed: values['require-sealed'] ?? false,
      log,
      onSessionEnd: (stats, reason) => {
        log(`frontend disconnected${reason ? ` (${reason})` : ''}; waiting for the next one`);
        statsLine('session-end', { reason, session: stats });
      },
    });
  } catch (error) {
    await device.close();
    io.err(`rxvmm-vhost-blk: cannot listen: ${(error as Error).message}\n`);
    // A problem with the path the user gave (something there, a missing directory...) is theirs to fix: 2.
    return isSocketPathError(error, values['socket-path']) ? 2 : 1;
  }
  log(
    `serving ${values['blk-file']}${values['read-only'] ? ' (read-only)' : ''} with ${numQueues} queue(s) on ${values['socket-path'] ?? `fd ${fd}`}${values['require-sealed'] ? ', sealed guest memory only' : ''}${delayCompletionsMs === undefined ? '' : `, completions delayed by up to ${delayCompletionsMs} ms (testing)`}`,
  );
  if (server.connectedMode) log(`fd ${fd} is a connected socket: serving that frontend only`);
  let shuttingDown: Promise<void> | null = null;
  return {
    server,
    device,
    finished: server.finished,
    shutdown(reason: string) {
      shuttingDown ??= (async () => {
        log(`shutting down: ${reason}`);
        await server.close();
        await device.close();
        statsLine('exit', { reason });
      })();
      return shuttingDown;
    },
  };
}

/** Why the disk image could not be served, and what to do, from the open error's code. */
function diskProblem(path: string, error: unknown): string {
  const { code, message } = error as Error & { code?: string };
  switch (code) {
    case 'ENOENT':
      return `no such file (rxvmm-vhost-blk never creates one): create it (truncate -s 64M ${path})`;
    case 'EACCES':
    case 'EPERM':
      return `this user may not open it for reading and writing: fix its permissions (chmod u+rw ${path}) or serve it with --read-only`;
    case 'EROFS':
      return 'it is on a read-only file system: serve it with --read-only';
    case 'EISDIR':
      return 'it is a directory: give a disk image (a regular file or a block device)';
    default:
      return message;
  }
}

/** VhostUserServer's errors about its socket path carry the path as `.path` (like Node's fs errors). */
function isSocketPathError(error: unknown, socketPath: string | undefined): boolean {
  return socketPath !== undefined && (error as { path?: unknown }).path === socketPath;
}

/** The largest fd number (`int`). */
const FD_MAX = 2 ** 31 - 1;

function parse(argv: string[]) {
  return parseCommandLine(
    argv,
    'rxvmm-vhost-blk',
    new Set(['--fd', '--num-queues', '--delay-completions']),
    (args) =>
      parseArgs({
        args,
        strict: true,
        allowPositionals: false,
        options: {
          'socket-path': { type: 'string' },
          fd: { type: 'string' },
          'blk-file': { type: 'string' },
          'read-only': { type: 'boolean' },
          'num-queues': { type: 'string' },
          'json-stats': { type: 'boolean' },
          io: { type: 'string' },
          'delay-completions': { type: 'string' },
          'require-sealed': { type: 'boolean' },
          'print-capabilities': { type: 'boolean' },
          help: { type: 'boolean', short: 'h' },
        },
      }),
  );
}
