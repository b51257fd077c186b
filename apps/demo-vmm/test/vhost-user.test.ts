// rxvmm-demo --vhost-user against rxvmm-vhost-blk (apps/vhost-backend): the queue is served by another
// process (kick = the ioeventfd's eventfd, call = the irqfd's eventfd); the VMM only runs the registers.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { builtMissing, kvmMissing, parseJson, patternByte, runCliAsync } from './helpers.js';

const BACKEND = fileURLToPath(new URL('../../vhost-backend/dist/cli.js', import.meta.url));
const REQUESTS = 16;
const BLOCK = 4096;

const missing = builtMissing() ?? kvmMissing() ?? (existsSync(BACKEND) ? undefined : `${BACKEND} not built`);
if (missing) console.warn(`rxvmm-demo --vhost-user test skipped: ${missing}`);

/** Resolves once the back-end says it serves (it listens by then; the socket file alone appears at bind). */
function waitForServing(child: ChildProcess, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`back-end not serving after ${ms} ms:\n${seen}`)), ms);
    child.stderr?.on('data', (d) => {
      seen += d;
      if (/serving /.test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`back-end exited (${code}):\n${seen}`)));
  });
}

describe.skipIf(missing !== undefined)('rxvmm-demo --vhost-user', () => {
  let dir: string | undefined;
  let backend: ChildProcess | undefined;
  afterEach(() => {
    if (backend?.pid && backend.exitCode === null) backend.kill('SIGTERM');
    backend = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  for (const flags of [[], ['--no-irqfd'], ['--no-ioeventfd']]) {
    it(`rxvmm-vhost-blk serves the queue ${flags.join(' ') || '(ioeventfd + irqfd)'}; the disk holds the pattern`, async () => {
      dir = mkdtempSync(join(tmpdir(), 'rxvmm-demo-vu-'));
      const disk = join(dir, 'disk.img');
      const socket = join(dir, 'vhost.sock');
      writeFileSync(disk, '');
      truncateSync(disk, REQUESTS * BLOCK + 65536);
      backend = spawn(process.execPath, [BACKEND, '--socket-path', socket, '--blk-file', disk], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      await waitForServing(backend, 10_000);
      const run = await runCliAsync([
        '--backend',
        'kvm',
        '--disk',
        disk,
        '--requests',
        String(REQUESTS),
        '--block-size',
        String(BLOCK),
        '--vhost-user',
        socket,
        '--json',
        ...flags,
      ]);
      expect(run.status, run.stderr).toBe(0);
      const report = parseJson(run);
      expect(report.verified).toBe(REQUESTS);
      expect(report.vhostUser).toBe(socket);
      // The VMM never touched the queue: it consumed no kicks; with irqfd it injected nothing itself.
      expect(report.kicks).toBe(0);
      expect(report.irqfdInjections).toBe(0);
      if (flags.includes('--no-irqfd')) expect(report.irqLineInjections).toBe(2 * REQUESTS);
      else expect(report.irqLineInjections).toBe(0);
      const bytes = readFileSync(disk);
      let bad = -1;
      for (let o = 0; o < REQUESTS * BLOCK && bad < 0; o++)
        if (bytes[o] !== patternByte(Math.floor(o / BLOCK), o % BLOCK)) bad = o;
      expect(bad).toBe(-1);
      expect(bytes.subarray(REQUESTS * BLOCK).every((b) => b === 0)).toBe(true);
    }, 60_000);
  }

  it('a socket with no back-end: clear message, exit 1', async () => {
    dir = mkdtempSync(join(tmpdir(), 'rxvmm-demo-vu-'));
    const run = await runCliAsync(['--backend', 'kvm', '--vhost-user', join(dir, 'none.sock'), '--json']);
    expect(run.status).toBe(1);
    expect(parseJson(run)).toMatchObject({ ok: false, code: 'ENOENT', exitCode: 1 });
    expect(run.stderr).toMatch(
      /rxvmm-demo: no vhost-user back-end at .*none\.sock: there is no socket there; start the back-end first/,
    );
  });
});
