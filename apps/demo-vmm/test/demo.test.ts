// End-to-end: the built rxvmm-demo CLI on SoftKvm and on /dev/kvm.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { builtMissing, CLI, kvmMissing, parseJson, patternByte, runCli } from './helpers.js';

const REQUESTS = 24;
/** The CLI's temporary disk directories (mkdtemp of `rxvmm-demo-`), not other tests' scratch dirs. */
const CLI_TEMP = /^rxvmm-demo-[A-Za-z0-9]{6}$/;
const BLOCK = 512;
const WITHOUT_KVM = new URL('./without-kvm.mjs', import.meta.url).href;
const built = builtMissing();
const kvm = built ?? kvmMissing();
if (built) console.warn(`rxvmm-demo e2e skipped: ${built}`);
else if (kvm) console.warn(`rxvmm-demo e2e on /dev/kvm skipped: ${kvm}`);

const JSON_KEYS = [
  'backend',
  'requests',
  'verified',
  'bytes',
  'seconds',
  'exits',
  'ioeventfdSignals',
  'irqfdInjections',
  'usPerRequest',
  'startupMs',
  'firstDeviceAccessMs',
  'peakRssMiB',
];

// The CLI's temporary disks go to a directory of this file's own (children inherit TMPDIR, and
// os.tmpdir() reads it): other rxvmm-demo runs on a shared machine make theirs in /tmp, which made
// the "temporary disk removed" checks below see their directories come and go.
const privateTmp = mkdtempSync(join(tmpdir(), 'rxvmm-demo-e2e-'));
process.env.TMPDIR = privateTmp;
afterAll(() => rmSync(privateTmp, { recursive: true, force: true }));

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});
function scratch(): string {
  dir = mkdtempSync(join(tmpdir(), 'rxvmm-demo-test-'));
  return dir;
}

function demo(backend: string, ...flags: string[]) {
  const run = runCli([
    '--backend',
    backend,
    '--requests',
    String(REQUESTS),
    '--block-size',
    String(BLOCK),
    '--json',
    ...flags,
  ]);
  return { run, report: parseJson(run) };
}

for (const backend of ['soft', 'kvm'] as const) {
  const skip = backend === 'kvm' ? kvm : built;
  describe.skipIf(skip !== undefined)(`rxvmm-demo --backend ${backend}`, () => {
    it('verifies every request; one JSON object on stdout with the documented shape; exit code 0', () => {
      const { run, report } = demo(backend);
      expect(run.status, run.stderr).toBe(0);
      for (const key of JSON_KEYS) expect(report, key).toHaveProperty(key);
      for (const key of ['mmio', 'io', 'hlt']) expect(typeof report.exits[key]).toBe('number');
      expect(report.backend).toBe(backend);
      expect(report.requests).toBe(REQUESTS);
      expect(report.verified).toBe(REQUESTS);
      expect(report.bytes).toBe(REQUESTS * 2 * BLOCK);
      expect(report.ok).toBe(true);
      // Two doorbells per request, all absorbed by the ioeventfd; one irqfd injection per completion.
      expect(report.ioeventfdSignals).toBe(2 * REQUESTS);
      expect(report.irqfdInjections).toBe(2 * REQUESTS);
      expect(report.guestInterrupts).toBe(2 * REQUESTS);
      expect(report.exits.io).toBe(2); // HELLO and DONE only
      expect(report.usPerRequest).toBeGreaterThan(0);
      expect(report.startupMs).toBeGreaterThan(0);
      expect(report.firstDeviceAccessMs).toBeGreaterThan(report.startupMs as number);
    });

    it('--no-ioeventfd: the exit count rises by exactly one per doorbell (two per request)', () => {
      const withFd = demo(backend).report;
      const { run, report } = demo(backend, '--no-ioeventfd');
      expect(run.status, run.stderr).toBe(0);
      expect(report.verified).toBe(REQUESTS);
      expect(report.ioeventfdSignals).toBe(0);
      expect(report.kicks).toBe(2 * REQUESTS);
      expect((report.exits.mmio ?? 0) - (withFd.exits.mmio ?? 0)).toBe(2 * REQUESTS);
      expect((report.exits.total ?? 0) - (withFd.exits.total ?? 0)).toBe(2 * REQUESTS);
      expect(report.exits.io).toBe(withFd.exits.io);
    });

    it('--no-irqfd: the VMM injects every completion with KVM_IRQ_LINE', () => {
      const { run, report } = demo(backend, '--no-irqfd');
      expect(run.status, run.stderr).toBe(0);
      expect(report.verified).toBe(REQUESTS);
      expect(report.irqfdInjections).toBe(0);
      expect(report.irqLineInjections).toBe(2 * REQUESTS);
      expect(report.guestInterrupts).toBe(2 * REQUESTS);
    });

    it('--disk: the pattern lands in the file, nothing past the requests is written', () => {
      const disk = join(scratch(), 'disk.img');
      writeFileSync(disk, '');
      truncateSync(disk, REQUESTS * BLOCK + 8192);
      const { run, report } = demo(backend, '--disk', disk);
      expect(run.status, run.stderr).toBe(0);
      expect(report.verified).toBe(REQUESTS);
      const bytes = readFileSync(disk);
      let bad = -1;
      for (let o = 0; o < REQUESTS * BLOCK && bad < 0; o++)
        if (bytes[o] !== patternByte(Math.floor(o / BLOCK), o % BLOCK)) bad = o;
      expect(bad).toBe(-1);
      expect(bytes.subarray(REQUESTS * BLOCK).every((b) => b === 0)).toBe(true);
    });

    for (const mode of ['bad-queue-addr', 'bad-head'] as const) {
      it(`a guest that misprograms the device (${mode}): NEEDS_RESET, clear message, exit 1, the disk untouched`, () => {
        const d = scratch();
        const disk = join(d, 'disk.img');
        const original = Buffer.alloc(REQUESTS * BLOCK, 0xa5);
        writeFileSync(disk, original);
        const before = readdirSync(tmpdir())
          .filter((n) => CLI_TEMP.test(n))
          .sort();
        const { run, report } = demo(backend, '--disk', disk, '--guest-mode', mode);
        expect(run.status).toBe(1);
        expect(report.ok).toBe(false);
        expect(report.needsReset).toBe(true);
        expect((report.deviceStatus as number) & 0x40).toBe(0x40);
        expect(report.verified).toBe(0);
        expect(run.stderr).toMatch(/DEVICE_NEEDS_RESET/);
        expect(readFileSync(disk).equals(original)).toBe(true);
        expect(readdirSync(d)).toEqual(['disk.img']);
        const after = readdirSync(tmpdir())
          .filter((n) => CLI_TEMP.test(n))
          .sort();
        expect(after).toEqual(before);
      });
    }
  });
}

describe.skipIf(built !== undefined)('rxvmm-demo: bad input', () => {
  it('an unknown flag: usage message, exit 2, nothing on stdout', () => {
    const run = runCli(['--frobnicate']);
    expect(run.status).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/Unknown option '--frobnicate'/);
    expect(run.stderr).toMatch(/--help/);
  });

  it('a missing disk: clear message, exit 1; --json still prints its one object (ok false)', () => {
    const run = runCli(['--backend', 'soft', '--disk', '/nonexistent/rxvmm-disk.img', '--json']);
    expect(run.status).toBe(1);
    expect(parseJson(run)).toMatchObject({ ok: false, code: 'ENOENT', exitCode: 1 });
    expect(run.stderr).toMatch(/disk \/nonexistent\/rxvmm-disk\.img does not exist/);
  });

  it('a disk that is not a file: clear message, exit 1', () => {
    const d = scratch();
    const run = runCli(['--backend', 'soft', '--disk', d, '--json']);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/is not a file/);
  });

  it('a disk too small for the requested work: clear message, exit 1, the file untouched', () => {
    const disk = join(scratch(), 'small.img');
    writeFileSync(disk, Buffer.alloc(1000, 7));
    const run = runCli(['--backend', 'soft', '--disk', disk, '--requests', '4', '--json']);
    expect(run.status).toBe(1);
    expect(parseJson(run)).toMatchObject({ ok: false, exitCode: 1 });
    expect(run.stderr).toMatch(/holds 1000 bytes, but 4 requests of 4096 bytes need 16384/);
    expect(readFileSync(disk).equals(Buffer.alloc(1000, 7))).toBe(true);
  });

  it('SIGINT stops the run cleanly: exit 130, a report on stdout, the temporary disk removed', async () => {
    const before = readdirSync(tmpdir())
      .filter((n) => CLI_TEMP.test(n))
      .sort();
    const child = spawn(process.execPath, [CLI, '--backend', 'soft', '--requests', '1000000', '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    // Wait until the guest is running (its temporary disk exists), then interrupt.
    for (let i = 0; i < 1000; i++) {
      const now = readdirSync(tmpdir()).filter((n) => CLI_TEMP.test(n) && !before.includes(n));
      if (now.length > 0) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGINT');
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(status, stderr).toBe(130);
    expect(stderr).toMatch(/interrupted before the guest finished/);
    const report = parseJson({ status, stdout, stderr });
    expect(report.ok).toBe(false);
    const after = readdirSync(tmpdir())
      .filter((n) => CLI_TEMP.test(n))
      .sort();
    expect(after).toEqual(before);
  });

  it('--help prints the usage and exits 0', () => {
    const run = runCli(['--help']);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/Usage: rxvmm-demo/);
  });

  // A machine without a usable /dev/kvm, given to the CLI child by test/without-kvm.mjs (so this runs
  // on every machine): --backend kvm fails with why and what to do; auto falls back and says why.
  for (const [mode, code] of [
    ['absent', 'ENOENT'],
    ['not-kvm', 'EINVAL'],
  ] as const) {
    const withoutKvm = (...args: string[]) => {
      const r = spawnSync(process.execPath, ['--import', WITHOUT_KVM, CLI, ...args], {
        encoding: 'utf8',
        timeout: 120_000,
        env: { ...process.env, RXVMM_TEST_KVM: mode },
      });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };

    it(`/dev/kvm ${mode}: --backend kvm says why (${code}) and what to do, exit 1, one JSON object (ok false)`, () => {
      const run = withoutKvm('--backend', 'kvm', '--requests', '2', '--json');
      expect(run.status, run.stderr).toBe(1);
      expect(parseJson(run)).toMatchObject({ ok: false, code, exitCode: 1, backend: 'kvm' });
      expect(run.stderr).toMatch(new RegExp(`^rxvmm-demo: ${code}: /dev/kvm `));
      expect(run.stderr).toMatch(/'--backend soft' runs the same guest on SoftKvm/);
    });

    it(`/dev/kvm ${mode}: --backend auto falls back to SoftKvm and says why`, () => {
      const run = withoutKvm('--requests', '2', '--block-size', '512', '--json');
      expect(run.status, run.stderr).toBe(0);
      expect(run.stderr).toMatch(
        new RegExp(`^rxvmm-demo: backend soft \\(/dev/kvm is not usable \\(${code}: `),
      );
      expect(parseJson(run).backend).toBe('soft');
    });
  }

  it('--backend auto says which backend it chose, on stderr only', () => {
    const run = runCli(['--requests', '2', '--block-size', '512', '--json']);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/rxvmm-demo: backend (kvm|soft) \(/);
    const report = parseJson(run);
    expect(run.stderr).toContain(`backend ${report.backend as string}`);
    // Without a usable /dev/kvm, auto falls back to SoftKvm and says why.
    if (kvm !== undefined) expect(run.stderr).toMatch(/backend soft \(\/dev\/kvm is not usable \(E[A-Z]+: /);
  });
});
