// The rough edges of the rxvmm-demo command line, on the built program: numbers, usage errors,
// --json when there is no run to report, environment problems (TMPDIR, permissions, a disk too
// small, no vhost-user back-end), and the summary's sentence per figure.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { builtMissing, CLI, kvmMissing, parseJson } from './helpers.js';

const built = builtMissing();
const kvm = built ?? kvmMissing();
const dir = mkdtempSync(join(tmpdir(), 'rxvmm-demo-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function demo(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(built !== undefined)('rxvmm-demo command line', () => {
  it.each([
    [['--requests', '-1'], '--requests must be between 1 and 1000000, got -1'],
    [['--requests=-1'], '--requests must be between 1 and 1000000, got -1'],
    [
      ['--requests', '99999999999999999999'],
      '--requests must be between 1 and 1000000, got 99999999999999999999',
    ],
    [['--block-size=-4096'], '--block-size must be between 1 and 1048576, got -4096'],
    [['--requests', 'many'], "--requests wants a whole number between 1 and 1000000, got 'many'"],
    [['--frobnicate'], "Unknown option '--frobnicate'"],
  ])('%j: exit 2, one line and the --help hint, nothing on stdout', (args, line) => {
    const r = demo(args);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`rxvmm-demo: ${line}\nTry 'rxvmm-demo --help'.\n`);
  });

  it('--backend soft --vhost-user: a usage error (exit 2, no errno prefix)', () => {
    const r = demo(['--backend', 'soft', '--vhost-user', join(dir, 'vu.sock')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /^rxvmm-demo: --vhost-user needs --backend kvm .*\nTry 'rxvmm-demo --help'\.\n$/,
    );
    expect(r.stderr).not.toMatch(/EINVAL/);
  });

  it('--json with a usage error: exactly one JSON object, ok false, the error, exit 2', () => {
    for (const args of [
      ['--requests', '-1', '--json'],
      ['--json', '--frobnicate'],
      ['--json', 'extra'],
    ]) {
      const r = demo(args);
      expect(r.status).toBe(2);
      expect(parseJson(r)).toEqual({
        ok: false,
        error: expect.any(String),
        code: 'USAGE',
        exitCode: 2,
        backend: null,
      });
    }
    expect(parseJson(demo(['--requests=-1', '--json'])).error).toBe(
      '--requests must be between 1 and 1000000, got -1',
    );
  });

  it.each([
    ['/nonexistent', 'does not exist', 'ENOENT'],
    ['/sys', 'is not writable by this user', 'EPERM'], // sysfs refuses new directories, even to root
  ])(
    'TMPDIR=%s: the directory, what is wrong and the fix; exit 1; --json says ok false',
    (tmp, problem, code) => {
      const r = demo(['--backend', 'soft', '--requests', '2', '--json'], { TMPDIR: tmp });
      expect(r.status).toBe(1);
      const message = `cannot create a temporary disk: the temporary directory ${tmp} (TMPDIR) ${problem}; set TMPDIR to a writable directory (TMPDIR=/tmp), or give a disk image with --disk FILE`;
      expect(r.stderr).toBe(`rxvmm-demo: ${message}\n`);
      expect(parseJson(r)).toEqual({ ok: false, error: message, code, exitCode: 1, backend: 'soft' });
    },
  );

  it('a 0-byte --disk: refused with the size it needs, exit 1; one JSON object', () => {
    const disk = join(dir, 'empty.img');
    writeFileSync(disk, '');
    const r = demo(['--backend', 'soft', '--disk', disk, '--requests', '2', '--block-size', '512', '--json']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      `rxvmm-demo: disk ${disk} holds 0 bytes, but 2 requests of 512 bytes need 1024: grow it (truncate -s 1024 ${disk}) or ask for fewer requests\n`,
    );
    expect(parseJson(r)).toMatchObject({ ok: false, code: 'EINVAL', exitCode: 1 });
  });

  it.skipIf(kvm !== undefined)(
    '--vhost-user with no back-end at the socket: the path and how to start one',
    () => {
      const socket = join(dir, 'nobody.sock');
      const r = demo(['--backend', 'kvm', '--vhost-user', socket, '--requests', '2', '--json']);
      expect(r.status).toBe(1);
      const message = `no vhost-user back-end at ${socket}: there is no socket there; start the back-end first (rxvmm-vhost-blk --socket-path ${socket} --blk-file DISK)`;
      expect(r.stderr).toBe(`rxvmm-demo: ${message}\n`);
      expect(parseJson(r)).toEqual({
        ok: false,
        error: message,
        code: 'ENOENT',
        exitCode: 1,
        backend: 'kvm',
      });
    },
  );

  it('the summary says what each figure means, in a sentence, and what exits per request are compared with', () => {
    const r = demo(['--backend', 'soft', '--requests', '4', '--block-size', '512']);
    expect(r.status, r.stderr).toBe(0);
    const [table, notes] = r.stdout.split('\nWhat the figures mean:\n');
    expect(notes).toBeDefined();
    const figures = (table ?? '')
      .split('\n')
      .slice(1)
      .filter((l) => l.trim() !== '')
      .map((l) => l.trim().split(/\s{2,}/)[0]);
    const explained = (notes ?? '')
      .split('\n')
      .filter((l) => /^ {2}\S/.test(l))
      .map((l) => l.trim().split(/\s{2,}/)[0]);
    // Every figure but the result has its sentence (start-up's row names its span).
    for (const figure of figures.filter((f) => f !== 'result'))
      expect(explained, figure).toContain(figure?.replace(/ \(.*\)$/, ''));
    const text = (notes ?? '').replace(/\s+/g, ' ');
    expect(text).toMatch(/µs per request guest run time \/ requests; SoftKvm has no hypervisor in the way/);
    expect(text).toMatch(
      /MMIO exits per request were \d+\.\d\d against a floor of 4 \(per transfer, the interrupt handler’s InterruptStatus read and InterruptACK write/,
    );
    const noFd = demo(['--backend', 'soft', '--requests', '4', '--block-size', '512', '--no-ioeventfd']);
    expect(noFd.stdout.replace(/\s+/g, ' ')).toMatch(
      /against a floor of 6 .*plus the two doorbells that exit without ioeventfd/,
    );
  });

  it.skipIf(kvm !== undefined)('on /dev/kvm the µs sentence says why SoftKvm can show fewer', () => {
    const r = demo(['--backend', 'kvm', '--requests', '2', '--block-size', '512']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.replace(/\s+/g, ' ')).toMatch(
      /on a nested machine two hypervisors, tens of µs each\) .* which is why SoftKvm can show fewer µs per request here/,
    );
  });
});
