// Starts a vhost-user-blk back-end process on a Unix socket: qemu-storage-daemon (the reference)
// or rxvmm-vhost-blk. Resolves once the socket is listening, so a frontend can connect at once.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './guest-image.js';

export interface BackendOptions {
  disk: string;
  socket: string;
  readOnly?: boolean;
  numQueues?: number;
  /** rxvmm-vhost-blk only: more arguments (e.g. `--io async`, `--delay-completions 20`). */
  rxvmmArgs?: string[];
  /** rxvmm-vhost-blk only: options for its Node (e.g. `--perf-basic-prof`, `--cpu-prof`). */
  nodeArgs?: string[];
}

export interface Backend {
  readonly name: string;
  readonly pid: number;
  readonly socket: string;
  /** stdout + stderr so far, for failure messages. */
  output(): string;
  /** Settles when the process ends. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL (a crash): resolves when the process is gone. */
  kill(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export type BackendKind = 'qemu-storage-daemon' | 'rxvmm-vhost-blk';

const appDir = join(repoRoot, 'apps/vhost-backend');

/** The rxvmm-vhost-blk entry: $RXVMM_VHOST_BLK, else the package's `bin` (built), else dist/cli.js. */
export function rxvmmVhostBlkEntry(): string {
  if (process.env.RXVMM_VHOST_BLK) return process.env.RXVMM_VHOST_BLK;
  const pkg = JSON.parse(readFileSync(join(appDir, 'package.json'), 'utf8')) as {
    bin?: string | Record<string, string>;
  };
  const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin?.['rxvmm-vhost-blk'];
  return join(appDir, bin ?? 'dist/cli.js');
}

/** Why rxvmm-vhost-blk cannot be started here, or undefined when it can. */
export function rxvmmVhostBlkMissing(): string | undefined {
  const entry = rxvmmVhostBlkEntry();
  return existsSync(entry)
    ? undefined
    : `${entry} not built (run \`npx -y pnpm@10.34.9 --filter @rxvmm/vhost-backend... build\`)`;
}

function commandFor(kind: BackendKind, o: BackendOptions): { command: string; args: string[] } {
  const queues = o.numQueues ?? 1;
  if (kind === 'qemu-storage-daemon') {
    return {
      command: 'qemu-storage-daemon',
      args: [
        '--blockdev',
        `driver=file,node-name=f0,filename=${o.disk}`,
        '--export',
        `type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,addr.path=${o.socket},writable=${o.readOnly ? 'off' : 'on'},num-queues=${queues}`,
      ],
    };
  }
  const args = [
    ...(o.nodeArgs ?? []),
    rxvmmVhostBlkEntry(),
    '--socket-path',
    o.socket,
    '--blk-file',
    o.disk,
    '--num-queues',
    String(queues),
  ];
  if (o.readOnly) args.push('--read-only');
  args.push(...(o.rxvmmArgs ?? []));
  return { command: process.execPath, args };
}

/** True when `path` is a listening Unix socket (read from /proc/net/unix: no probe connection,
 * which a one-frontend-at-a-time back-end would see as a frontend). */
export function isListening(path: string): boolean {
  const ACCEPTCON = 0x10000;
  for (const line of readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 8 && f.slice(7).join(' ') === path && (Number.parseInt(f[3]!, 16) & ACCEPTCON) !== 0)
      return true;
  }
  return false;
}

export async function startBackend(
  kind: BackendKind,
  o: BackendOptions,
  readyTimeoutMs = 15_000,
): Promise<Backend> {
  const { command, args } = commandFor(kind, o);
  const child: ChildProcess = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
    child.on('error', (err) => {
      out += `spawn failed: ${err.message}\n`;
      resolve({ code: -1, signal: null });
    });
  });
  let gone = false;
  void exited.then(() => (gone = true));
  const backend: Backend = {
    name: kind,
    pid: child.pid ?? -1,
    socket: o.socket,
    output: () => out,
    exited,
    async stop(graceMs = 5_000) {
      if (!gone) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const r = await exited;
      clearTimeout(timer);
      return r;
    },
    kill() {
      if (!gone) child.kill('SIGKILL');
      return exited;
    },
  };
  const deadline = Date.now() + readyTimeoutMs;
  while (!isListening(o.socket)) {
    if (gone) throw new Error(`${kind} exited before listening on ${o.socket}:\n${out}`);
    if (Date.now() > deadline) {
      await backend.stop(500);
      throw new Error(`${kind} did not listen on ${o.socket} within ${readyTimeoutMs} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return backend;
}
