// E2E: rxvmm-vhost-blk killed with SIGKILL in the middle of a guest's writes, three times, and
// started again each time. QEMU reconnects (`-chardev socket,...,reconnect=1`) and hands the new
// back-end the inflight region (VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD); the back-end completes
// requests out of order on purpose (--delay-completions), so at every kill some later request has
// completed while an earlier one has not. Four writer processes in the guest write with O_DIRECT
// (blkwork parwrite): every write must complete, the data must read back in the guest and be in the
// file, the guest kernel must log no I/O error, and each restarted back-end must have found requests
// in flight to serve again. Split and packed rings.
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Backend, type BackendOptions, rxvmmVhostBlkMissing, startBackend } from './qemu/backends.js';
import { qemuAvailability } from './qemu/guest-image.js';
import { findMismatch } from './qemu/pattern.js';
import { bootGuest, describeRun } from './qemu/qemu-boot.js';

const MiB = 1 << 20;
const DISK = 64 * MiB;
const SEED = 0x5151;
const avail = qemuAvailability();
const missing = avail.ok ? rxvmmVhostBlkMissing() : avail.reason;
if (missing) console.warn(`QEMU inflight e2e skipped: ${missing}`);

/** What the guest kernel says when a request fails or the ring breaks. */
const IO_TROUBLE =
  /I\/O error|blk_update_request|Buffer I\/O|is not a head|virtio.*(broken|error)|blocked for more than|hung_task/i;
/** Milliseconds from the start of the writes to the first kill, then from each restart to the next kill. */
const KILLS = [1500, 2500, 2500];

function readRange(path: string, offset: number, length: number): Uint8Array {
  const buf = new Uint8Array(length);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, length, offset);
  } finally {
    closeSync(fd);
  }
  return buf;
}

describe.skipIf(missing !== undefined)(
  'QEMU + Linux guest: rxvmm-vhost-blk killed mid-I/O, restarted',
  () => {
    let dir: string | undefined;
    let backend: Backend | undefined;
    afterEach(async () => {
      await backend?.stop();
      backend = undefined;
      if (dir) rmSync(dir, { recursive: true, force: true });
      dir = undefined;
    });
    const image = avail.ok ? avail.value : { kernel: '', initrd: '' };

    for (const packed of [false, true]) {
      it(`${packed ? 'packed' : 'split'} ring: every write completes once, the data is in the guest and the file, no I/O error`, async () => {
        dir = mkdtempSync(join(tmpdir(), 'rxvmm-qemu-inflight-'));
        const disk = join(dir, 'disk.img');
        writeFileSync(disk, new Uint8Array(DISK));
        const socket = join(dir, 'vhost.sock');
        const options: BackendOptions = {
          disk,
          socket,
          rxvmmArgs: ['--io', 'async', '--delay-completions', '30'],
        };
        backend = await startBackend('rxvmm-vhost-blk', options);
        const outputs: (() => string)[] = [backend.output];
        let began!: () => void;
        const writing = new Promise<void>((resolve) => {
          began = resolve;
        });
        const steps = [`parwrite:0:32M:${SEED}:4:3`, `verify:0:32M:${SEED}`];
        const started = Date.now();
        let writesDoneAt = 0;
        const run = bootGuest({
          image,
          socket,
          reconnect: 1,
          packed,
          kernelLog: true,
          timeoutMs: 100_000,
          steps,
          onEvent: (e) => {
            if (e.kind === 'begin' && e.begin.op === 'parwrite') began();
            if (e.kind === 'result' && e.result.op === 'parwrite') writesDoneAt = Date.now() - started;
          },
        });
        const early = await Promise.race([writing.then(() => null), run]);
        if (early) throw new Error(`the guest never started writing:\n${describeRun(early)}`);
        const killedAt: number[] = [];
        for (const wait of KILLS) {
          await new Promise((r) => setTimeout(r, wait));
          killedAt.push(Date.now() - started);
          await backend.kill();
          backend = await startBackend('rxvmm-vhost-blk', options);
          outputs.push(backend.output);
        }
        const result = await run;
        const logs = outputs.map((o, i) => `--- back-end ${i} ---\n${o()}`).join('\n');
        const why = `${describeRun(result)}\nkills at ${killedAt.join(', ')} ms, run ${result.durationMs} ms\n${logs}`;
        expect(result.timedOut, why).toBe(false);
        expect(result.guestStatus, why).toBe(0);
        expect(
          result.results.map((r) => [r.step, r.ok]),
          why,
        ).toEqual(steps.map((s) => [s, true]));
        // The guest was still writing when the last back-end was killed.
        expect(writesDoneAt, why).toBeGreaterThan(killedAt[KILLS.length - 1] ?? 0);
        expect(result.features?.[34], why).toBe(packed ? '1' : '0'); // VIRTIO_F_RING_PACKED as the guest sees it
        expect(result.kernelLog.length, why).toBeGreaterThan(0);
        expect(
          result.kernelLog.filter((l) => IO_TROUBLE.test(l)),
          why,
        ).toEqual([]);
        // Each back-end after a kill found requests in flight and served them again.
        for (const output of outputs.slice(1))
          expect(output(), why).toMatch(/inflight record: [1-9]\d* request\(s\) in flight served again/);
        await backend.stop();
        expect(findMismatch(readRange(disk, 0, 32 * MiB), 0, SEED), why).toBe(-1);
        expect(
          readRange(disk, 32 * MiB, 32 * MiB).every((b) => b === 0),
          why,
        ).toBe(true);
      }, 150_000);
    }
  },
);
