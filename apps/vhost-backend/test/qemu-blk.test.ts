// E2E (a): a real QEMU boots Debian's cloud kernel with a vhost-user-blk disk; the guest writes a
// pattern to /dev/vda with O_DIRECT, reads it back and checks it; the host then checks the disk file.
// Run against qemu-storage-daemon (the reference, proving the harness) and rxvmm-vhost-blk.
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Backend, type BackendKind, rxvmmVhostBlkMissing, startBackend } from './qemu/backends.js';
import { qemuAvailability } from './qemu/guest-image.js';
import { fillPattern, findMismatch } from './qemu/pattern.js';
import { bootGuest, describeRun } from './qemu/qemu-boot.js';

const MiB = 1 << 20;
const DISK = 64 * MiB;
const HOST_SEED = 0x1111; // written by the host, checked by the guest: [0, 8 MiB)
const GUEST_SEED = 0x2222; // written by the guest, checked by both: [8 MiB, 24 MiB)
const TAIL_SEED = 0x3333; // the disk's last MiB: requests at the very end of the device

const avail = qemuAvailability();
if (!avail.ok) console.warn(`QEMU e2e tests skipped: ${avail.reason}`);
const rxvmmMissing = rxvmmVhostBlkMissing();
if (avail.ok && rxvmmMissing) console.warn(`rxvmm-vhost-blk QEMU e2e skipped: ${rxvmmMissing}`);

function readRange(path: string, offset: number, length: number): Uint8Array {
  const buf = new Uint8Array(length);
  const fd = openSync(path, 'r');
  try {
    let done = 0;
    while (done < length) {
      const n = readSync(fd, buf, done, length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return buf;
}

function makeDisk(dir: string): string {
  const disk = join(dir, 'disk.img');
  const bytes = new Uint8Array(DISK);
  fillPattern(bytes.subarray(0, 8 * MiB), 0, HOST_SEED);
  writeFileSync(disk, bytes);
  return disk;
}

describe.skipIf(!avail.ok)('QEMU + Linux guest over vhost-user-blk', () => {
  let dir: string | undefined;
  let backend: Backend | undefined;
  afterEach(async () => {
    await backend?.stop();
    backend = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  const image = avail.ok ? avail.value : { kernel: '', initrd: '' };
  const kinds: { kind: BackendKind; missing: string | undefined }[] = [
    { kind: 'qemu-storage-daemon', missing: undefined },
    { kind: 'rxvmm-vhost-blk', missing: rxvmmMissing },
  ];

  for (const { kind, missing } of kinds) {
    it.skipIf(missing !== undefined)(
      `${kind}: the guest writes, reads back and verifies a pattern; the host finds it in the file`,
      async () => {
        dir = mkdtempSync(join(tmpdir(), 'rxvmm-qemu-'));
        const disk = makeDisk(dir);
        const socket = join(dir, 'vhost.sock');
        backend = await startBackend(kind, { disk, socket });
        const run = await bootGuest({
          image,
          socket,
          timeoutMs: 120_000,
          steps: [
            `verify:0:8M:${HOST_SEED}`,
            `write:8M:16M:${GUEST_SEED}`,
            `verify:8M:16M:${GUEST_SEED}`,
            `write:63M:1M:${TAIL_SEED}`,
            `verify:63M:1M:${TAIL_SEED}`,
          ],
        });
        const why = `${describeRun(run)}\n--- ${kind} ---\n${backend.output()}`;
        expect(run.timedOut, why).toBe(false);
        expect(run.guestStatus, why).toBe(0);
        expect(run.device, why).toEqual({ bytes: DISK, readOnly: false });
        expect(run.queues, why).toBe(1);
        expect(
          run.results.map((r) => [r.step, r.ok]),
          why,
        ).toEqual([
          [`verify:0:8M:${HOST_SEED}`, true],
          [`write:8M:16M:${GUEST_SEED}`, true],
          [`verify:8M:16M:${GUEST_SEED}`, true],
          [`write:63M:1M:${TAIL_SEED}`, true],
          [`verify:63M:1M:${TAIL_SEED}`, true],
        ]);
        expect(run.exitCode, why).toBe(0);

        // The back-end flushes on SIGTERM; then the file must hold exactly what the guest wrote.
        await backend.stop();
        expect(findMismatch(readRange(disk, 0, 8 * MiB), 0, HOST_SEED)).toBe(-1);
        expect(findMismatch(readRange(disk, 8 * MiB, 16 * MiB), 8 * MiB, GUEST_SEED)).toBe(-1);
        expect(findMismatch(readRange(disk, 63 * MiB, MiB), 63 * MiB, TAIL_SEED)).toBe(-1);
        expect(readRange(disk, 24 * MiB, 39 * MiB).every((b) => b === 0)).toBe(true);
      },
      180_000,
    );

    it.skipIf(missing !== undefined)(
      `${kind}: one back-end process serves two QEMUs in turn; the second reads what the first wrote`,
      async () => {
        dir = mkdtempSync(join(tmpdir(), 'rxvmm-qemu-'));
        const disk = makeDisk(dir);
        const socket = join(dir, 'vhost.sock');
        backend = await startBackend(kind, { disk, socket });
        const first = await bootGuest({
          image,
          socket,
          timeoutMs: 120_000,
          steps: [`write:16M:8M:${GUEST_SEED}`],
        });
        const why1 = `${describeRun(first)}\n--- ${kind} ---\n${backend.output()}`;
        expect(first.guestStatus, why1).toBe(0);
        // The frontend is gone (QEMU exited); the same back-end must accept the next one.
        const second = await bootGuest({
          image,
          socket,
          timeoutMs: 120_000,
          steps: [`verify:16M:8M:${GUEST_SEED}`, `verify:0:8M:${HOST_SEED}`],
        });
        const why2 = `${describeRun(second)}\n--- ${kind} ---\n${backend.output()}`;
        expect(second.guestStatus, why2).toBe(0);
        expect(
          second.results.map((r) => r.ok),
          why2,
        ).toEqual([true, true]);
        const exit = await backend.stop();
        expect(exit, backend.output()).toEqual({ code: 0, signal: null });
        expect(findMismatch(readRange(disk, 16 * MiB, 8 * MiB), 16 * MiB, GUEST_SEED)).toBe(-1);
      },
      240_000,
    );

    it.skipIf(missing !== undefined)(
      `${kind}: QEMU killed in the middle of a write stream; the back-end serves the next QEMU`,
      async () => {
        dir = mkdtempSync(join(tmpdir(), 'rxvmm-qemu-'));
        const disk = makeDisk(dir);
        const socket = join(dir, 'vhost.sock');
        backend = await startBackend(kind, { disk, socket });
        const abort = new AbortController();
        let resultsAfterBegin = 0;
        const killed = await bootGuest({
          image,
          socket,
          timeoutMs: 120_000,
          signal: abort.signal,
          // Far more than the run lasts: requests are in flight when QEMU dies.
          steps: ['seqwrite:64G'],
          onEvent: (e) => {
            if (e.kind === 'begin') setTimeout(() => abort.abort(), 300);
            if (e.kind === 'result') resultsAfterBegin++;
          },
        });
        const why1 = `${describeRun(killed)}\n--- ${kind} ---\n${backend.output()}`;
        expect(killed.signal, why1).toBe('SIGKILL');
        expect(killed.timedOut, why1).toBe(false);
        expect(resultsAfterBegin, why1).toBe(0);

        const next = await bootGuest({
          image,
          socket,
          timeoutMs: 120_000,
          steps: [`write:32M:4M:${GUEST_SEED}`, `verify:32M:4M:${GUEST_SEED}`],
        });
        const why2 = `${describeRun(next)}\n--- ${kind} ---\n${backend.output()}`;
        expect(next.guestStatus, why2).toBe(0);
        expect(
          next.results.map((r) => r.ok),
          why2,
        ).toEqual([true, true]);
        const exit = await backend.stop();
        expect(exit, backend.output()).toEqual({ code: 0, signal: null });
        expect(findMismatch(readRange(disk, 32 * MiB, 4 * MiB), 32 * MiB, GUEST_SEED)).toBe(-1);
      },
      240_000,
    );

    it.skipIf(missing !== undefined)(
      `${kind} with 2 queues and 2 vCPUs: the guest sets up both rings and its data arrives`,
      async () => {
        dir = mkdtempSync(join(tmpdir(), 'rxvmm-qemu-'));
        const disk = makeDisk(dir);
        const socket = join(dir, 'vhost.sock');
        backend = await startBackend(kind, { disk, socket, numQueues: 2 });
        const steps = [
          `write:8M:16M:${GUEST_SEED}`,
          `verify:8M:16M:${GUEST_SEED}`,
          `verify:0:8M:${HOST_SEED}`,
        ];
        const run = await bootGuest({ image, socket, numQueues: 2, cpus: 2, timeoutMs: 120_000, steps });
        const why = `${describeRun(run)}\n--- ${kind} ---\n${backend.output()}`;
        expect(run.timedOut, why).toBe(false);
        expect(run.guestStatus, why).toBe(0);
        expect(run.queues, why).toBe(2);
        expect(
          run.results.map((r) => [r.step, r.ok]),
          why,
        ).toEqual(steps.map((s) => [s, true]));
        await backend.stop();
        expect(findMismatch(readRange(disk, 8 * MiB, 16 * MiB), 8 * MiB, GUEST_SEED)).toBe(-1);
      },
      180_000,
    );

    it.skipIf(missing !== undefined)(
      `${kind} --read-only: the guest reads the disk, its writes fail, the file is unchanged`,
      async () => {
        dir = mkdtempSync(join(tmpdir(), 'rxvmm-qemu-'));
        const disk = makeDisk(dir);
        const socket = join(dir, 'vhost.sock');
        backend = await startBackend(kind, { disk, socket, readOnly: true });
        const run = await bootGuest({
          image,
          socket,
          timeoutMs: 120_000,
          steps: [`verify:0:8M:${HOST_SEED}`, `write:8M:1M:${GUEST_SEED}`],
        });
        const why = `${describeRun(run)}\n--- ${kind} ---\n${backend.output()}`;
        expect(run.timedOut, why).toBe(false);
        expect(run.device, why).toEqual({ bytes: DISK, readOnly: true });
        expect(
          run.results.map((r) => [r.step, r.ok]),
          why,
        ).toEqual([
          [`verify:0:8M:${HOST_SEED}`, true],
          [`write:8M:1M:${GUEST_SEED}`, false],
        ]);
        expect(run.guestStatus, why).toBe(1);
        await backend.stop();
        expect(findMismatch(readRange(disk, 0, 8 * MiB), 0, HOST_SEED)).toBe(-1);
        expect(readRange(disk, 8 * MiB, 56 * MiB).every((b) => b === 0)).toBe(true);
      },
      180_000,
    );
  }

  it.skipIf(rxvmmMissing !== undefined)(
    "rxvmm-vhost-blk with packed virtqueues (vhost-user-blk-pci,packed=on): the guest's data arrives both ways",
    async () => {
      dir = mkdtempSync(join(tmpdir(), 'rxvmm-qemu-'));
      const disk = makeDisk(dir);
      const socket = join(dir, 'vhost.sock');
      backend = await startBackend('rxvmm-vhost-blk', { disk, socket });
      const steps = [
        `verify:0:8M:${HOST_SEED}`,
        `write:8M:16M:${GUEST_SEED}`,
        `verify:8M:16M:${GUEST_SEED}`,
        `write:63M:1M:${TAIL_SEED}`,
        `verify:63M:1M:${TAIL_SEED}`,
      ];
      const run = await bootGuest({ image, socket, packed: true, timeoutMs: 120_000, steps });
      const why = `${describeRun(run)}\n--- rxvmm-vhost-blk ---\n${backend.output()}`;
      expect(run.timedOut, why).toBe(false);
      expect(run.guestStatus, why).toBe(0);
      expect(run.features?.[34], why).toBe('1'); // the guest drives VIRTIO_F_RING_PACKED rings
      expect(
        run.results.map((r) => [r.step, r.ok]),
        why,
      ).toEqual(steps.map((s) => [s, true]));
      await backend.stop();
      expect(findMismatch(readRange(disk, 8 * MiB, 16 * MiB), 8 * MiB, GUEST_SEED)).toBe(-1);
      expect(findMismatch(readRange(disk, 63 * MiB, MiB), 63 * MiB, TAIL_SEED)).toBe(-1);
      expect(readRange(disk, 24 * MiB, 39 * MiB).every((b) => b === 0)).toBe(true);
    },
    180_000,
  );
});
