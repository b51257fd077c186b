/**
 * rxvmm-demo --snapshot-after N --snapshot FILE, then --restore FILE in a new
 * process (docs/SNAPSHOT.md), on /dev/kvm: taken at the moment a doorbell was
 * rung and not served, and at the moment an interrupt was signalled and not
 * taken; neither is lost, every request is verified by the guest. Also the
 * refusals (a damaged file, SoftKvm) and the figures --json reports.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseOptions, UsageError } from '../src/options.js';
import { builtMissing, kvmMissing, parseJson, patternByte, runCli } from './helpers.js';

const REQUESTS = 48;
const BLOCK = 4096;
const AFTER = 17;
const built = builtMissing();
const kvm = built ?? kvmMissing();
const dir = mkdtempSync(join(tmpdir(), 'rxvmm-demo-snapshot-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function freshDisk(name: string): string {
  const disk = join(dir, name);
  writeFileSync(disk, '');
  truncateSync(disk, REQUESTS * BLOCK);
  return disk;
}

/** Every request's pattern, written by the guest, is in the disk file. */
function diskHoldsEveryPattern(disk: string): boolean {
  const bytes = readFileSync(disk);
  for (let o = 0; o < REQUESTS * BLOCK; o++)
    if (bytes[o] !== patternByte(Math.floor(o / BLOCK), o % BLOCK)) return false;
  return true;
}

function snapshotAt(moment: 'doorbell' | 'interrupt' | 'any') {
  const disk = freshDisk(`${moment}.img`);
  const file = join(dir, `${moment}.snap`);
  const run = runCli([
    '--backend',
    'kvm',
    '--requests',
    String(REQUESTS),
    '--disk',
    disk,
    '--snapshot-after',
    String(AFTER),
    '--snapshot',
    file,
    '--snapshot-at',
    moment,
    '--json',
  ]);
  return { disk, file, run, report: parseJson(run) as ReturnType<typeof parseJson> & SnapshotFields };
}

interface SnapshotFields {
  snapshot: {
    path: string;
    bytes: number;
    saveMs: number;
    pendingDoorbells: number;
    pendingInterrupt: boolean;
  };
  restore: { path: string; bytes: number; resumeMs: number; memory: 'private' | 'copy' };
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe.skipIf(kvm !== undefined)('rxvmm-demo snapshots on /dev/kvm', () => {
  it('a doorbell rung and not yet served (in the kick eventfd) survives: the new process serves it and finishes', () => {
    const { disk, file, run, report } = snapshotAt('doorbell');
    expect(run.status, run.stderr).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.verified).toBeGreaterThanOrEqual(AFTER);
    expect(report.verified).toBeLessThan(REQUESTS);
    expect(report.snapshot.pendingDoorbells).toBeGreaterThanOrEqual(1);
    const before = sha256(file);
    const restored = runCli(['--restore', file, '--json']);
    expect(restored.status, restored.stderr).toBe(0);
    const r = parseJson(restored) as ReturnType<typeof parseJson> & SnapshotFields;
    expect(r.ok).toBe(true);
    // Guest RAM was the file's memory section mapped copy-on-write: the guest's writes stayed private.
    expect(r.restore.memory).toBe('private');
    expect(sha256(file)).toBe(before);
    expect(r.requests).toBe(REQUESTS);
    expect(r.verified).toBe(REQUESTS);
    expect(r.needsReset).toBe(false);
    expect(diskHoldsEveryPattern(disk)).toBe(true);
  });

  it('an interrupt signalled and not yet taken (in the local APIC) survives: the guest takes it in the new process', () => {
    const { disk, file, run, report } = snapshotAt('interrupt');
    expect(run.status, run.stderr).toBe(0);
    expect(report.snapshot.pendingInterrupt).toBe(true);
    const restored = runCli(['--restore', file, '--json']);
    expect(restored.status, restored.stderr).toBe(0);
    const r = parseJson(restored);
    expect(r.verified).toBe(REQUESTS);
    // One interrupt per transfer in all: the pending one was taken once, none was lost or doubled.
    expect(r.guestInterrupts).toBe(2 * REQUESTS);
    expect(diskHoldsEveryPattern(disk)).toBe(true);
  });

  it('--json reports snapshot size, save time and restore-to-next-instruction beside a cold start of the same run', () => {
    const cold = parseJson(runCli(['--backend', 'kvm', '--requests', String(REQUESTS), '--json']));
    const { file, report } = snapshotAt('any');
    const restored = parseJson(runCli(['--restore', file, '--json'])) as ReturnType<typeof parseJson> &
      SnapshotFields;
    const unverified = parseJson(runCli(['--restore', file, '--no-verify-memory', '--json'])) as ReturnType<
      typeof parseJson
    > &
      SnapshotFields;
    const copied = parseJson(runCli(['--restore', file, '--restore-memory', 'copy', '--json'])) as ReturnType<
      typeof parseJson
    > &
      SnapshotFields;
    expect([restored.verified, unverified.verified, copied.verified]).toEqual([REQUESTS, REQUESTS, REQUESTS]);
    expect([restored.restore.memory, copied.restore.memory]).toEqual(['private', 'copy']);
    expect(report.snapshot.bytes).toBe(readFileSync(file).length);
    expect(report.snapshot.bytes).toBeGreaterThan(16 << 20); // guest RAM and the state
    expect(report.snapshot.saveMs).toBeGreaterThan(0);
    expect(restored.restore.resumeMs).toBeGreaterThan(0);
    expect(restored.startupMs).toBe(restored.restore.resumeMs);
    expect(cold.startupMs).toBeGreaterThan(0);
    console.log(
      `snapshot ${report.snapshot.bytes} bytes, saved in ${report.snapshot.saveMs.toFixed(1)} ms; ` +
        `process start → next guest instruction: restore ${restored.restore.resumeMs.toFixed(1)} ms ` +
        `(memory mapped lazily; ${unverified.restore.resumeMs.toFixed(1)} ms without hashing it; ` +
        `${copied.restore.resumeMs.toFixed(1)} ms copied), ` +
        `cold start ${(cold.startupMs as number).toFixed(1)} ms`,
    );
  });

  it('a damaged or truncated snapshot: one clear error (errno code), exit 1, one JSON object, no guest run', () => {
    const { file } = snapshotAt('any');
    const bytes = readFileSync(file);
    const corrupted = join(dir, 'corrupted.snap');
    const copy = Buffer.from(bytes);
    copy.writeUInt8(copy.readUInt8(4100) ^ 1, 4100);
    writeFileSync(corrupted, copy);
    const truncated = join(dir, 'truncated.snap');
    writeFileSync(truncated, bytes.subarray(0, bytes.length - 4096));
    for (const [path, code] of [
      [corrupted, 'EIO'],
      [truncated, 'EIO'],
      [join(dir, 'missing.snap'), 'ENOENT'],
    ] as const) {
      const run = runCli(['--restore', path, '--json']);
      expect(run.status).toBe(1);
      const failure = parseJson(run);
      expect(failure).toMatchObject({ ok: false, code, backend: null });
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});

describe('snapshot options', () => {
  const usage =
    (...argv: string[]) =>
    () =>
      parseOptions(argv);
  it('take the pieces together, kvm only, a --disk, a moment before the end', () => {
    expect(parseOptions(['--snapshot-after', '3', '--snapshot', 's', '--disk', 'd'])).toMatchObject({
      snapshotAfter: 3,
      snapshot: 's',
      snapshotAt: 'any',
      restore: undefined,
    });
    expect(usage('--snapshot-after', '3')).toThrow(UsageError);
    expect(usage('--snapshot', 's', '--disk', 'd')).toThrow(UsageError);
    expect(usage('--snapshot-after', '3', '--snapshot', 's')).toThrow(/needs --disk/);
    expect(usage('--snapshot-after', '300', '--snapshot', 's', '--disk', 'd')).toThrow(/below --requests/);
    expect(usage('--snapshot-after', '3', '--snapshot', 's', '--disk', 'd', '--backend', 'soft')).toThrow(
      /SoftKvm's guest is a TypeScript program/,
    );
    expect(usage('--snapshot-after', '3', '--snapshot', 's', '--disk', 'd', '--snapshot-at', 'now')).toThrow(
      UsageError,
    );
    expect(usage('--snapshot-at', 'doorbell')).toThrow(UsageError);
  });

  it('--restore takes the machine from the file', () => {
    expect(parseOptions(['--restore', 'f'])).toMatchObject({
      restore: 'f',
      restoreMemory: 'private',
      verifyMemory: true,
    });
    expect(parseOptions(['--restore', 'f', '--restore-memory', 'copy', '--no-verify-memory'])).toMatchObject({
      restoreMemory: 'copy',
      verifyMemory: false,
    });
    expect(usage('--restore', 'f', '--restore-memory', 'lazy')).toThrow(/private or copy/);
    expect(usage('--restore-memory', 'copy')).toThrow(/go with --restore/);
    expect(usage('--no-verify-memory')).toThrow(/go with --restore/);
    expect(usage('--restore', 'f', '--requests', '5')).toThrow(/leave out --requests/);
    expect(usage('--restore', 'f', '--backend', 'soft')).toThrow(UsageError);
    expect(usage('--restore', 'f', '--snapshot-after', '1', '--snapshot', 's', '--disk', 'd')).toThrow(
      UsageError,
    );
  });
});
