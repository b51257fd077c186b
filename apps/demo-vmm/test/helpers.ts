/** Runs the built CLI (dist/bundle/cli.cjs, the package's bin) and parses its output. */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { kvmAvailability } from '@rxvmm/kvm-linux';

export const CLI = fileURLToPath(new URL('../dist/bundle/cli.cjs', import.meta.url));
export const GUEST = fileURLToPath(new URL('../build/guests/blk-guest.bin', import.meta.url));

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: readonly string[], timeoutMs = 120_000): CliRun {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Parses --json output: exactly one JSON object on one line, nothing else. */
export function parseJson(run: CliRun): Record<string, unknown> & {
  exits: Record<string, number>;
  [k: string]: unknown;
} {
  const lines = run.stdout.split('\n').filter((l) => l !== '');
  if (lines.length !== 1)
    throw new Error(`expected one line on stdout, got:\n${run.stdout}\nstderr:\n${run.stderr}`);
  return JSON.parse(lines[0] ?? '');
}

export function builtMissing(): string | undefined {
  if (!existsSync(CLI) || !existsSync(GUEST)) return `${CLI} or the guest image is not built (pnpm build)`;
  return undefined;
}

export function kvmMissing(): string | undefined {
  const a = kvmAvailability();
  return a.available ? undefined : `/dev/kvm is not usable: ${a.reason}`;
}

/** apps/demo-vmm/guest/guest.c: byte j of request i. */
export function patternByte(i: number, j: number): number {
  return ((i * 131 + j * 7 + (j >> 9)) ^ 0x5a) & 0xff;
}

/** The same, without blocking this process's event loop (a child process the test started must keep running). */
export function runCliAsync(args: readonly string[], timeoutMs = 120_000): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
