// rxvmm-vhost-blk killed with SIGKILL while writes are in flight and completing out of order
// (--delay-completions), then started again on the same socket: the TS frontend does what QEMU does
// with `reconnect` (the inflight region it got from the first process, handed to the second;
// split: the used index as the ring base; packed: the base the ring started from, as QEMU 7.2 does)
// and every write completes exactly once, with its data in the file. The QEMU version of this is
// qemu-inflight.test.ts; this one runs in seconds.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type FrontendInflight, PACKED_RING_START, VhostUserFrontend } from '@rxvmm/vhost-user';
import { MemfdRam, TestPackedQueue, TestQueue } from '@rxvmm/vhost-user/testing';
import { featureBit, VirtioFeature } from '@rxvmm/virtio';
import { BlkRequestType, BlkStatus } from '@rxvmm/virtio-blk';
import { afterAll, describe, expect, it } from 'vitest';
import { isListening } from './qemu/backends.js';

const cli = join(dirname(fileURLToPath(import.meta.url)), '../dist/cli.js');
const built = existsSync(cli);
if (!built) console.warn(`crash-recovery tests skipped: ${cli} not built (npx tsc -p tsconfig.build.json)`);

const dir = mkdtempSync(join(tmpdir(), 'rxvmm-vhost-crash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Proc {
  child: ChildProcess;
  output(): string;
  exited: Promise<void>;
}

async function startCli(socket: string, disk: string): Promise<Proc> {
  const child = spawn(
    process.execPath,
    [cli, '--socket-path', socket, '--blk-file', disk, '--io', 'async', '--delay-completions', '40'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (t: string) => (out += t));
  child.stderr?.setEncoding('utf8').on('data', (t: string) => (out += t));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  while (!isListening(socket)) {
    if (child.exitCode !== null) throw new Error(`rxvmm-vhost-blk exited:\n${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { child, output: () => out, exited };
}

const SECTORS_PER_WRITE = 8; // 4 KiB
const WRITES = 12;
const pattern = (k: number) => new Uint8Array(4096).map((_, i) => (k * 37 + i * 11 + 1) & 0xff);

describe.skipIf(!built)('rxvmm-vhost-blk killed mid-I/O and restarted (inflight I/O tracking)', () => {
  for (const packed of [false, true]) {
    it(`${packed ? 'packed' : 'split'} ring: every write completes exactly once and lands in the file`, async () => {
      const disk = join(dir, `disk-${packed}.img`);
      writeFileSync(disk, new Uint8Array(1 << 20));
      const socket = join(dir, `blk-${packed}.sock`);
      const ram = new MemfdRam(4 << 20, 0n, true);
      const q = packed ? new TestPackedQueue(ram, 64, 0x10000n) : new TestQueue(ram, 64, 0x10000n);
      const want =
        featureBit(VirtioFeature.VERSION_1) | (packed ? featureBit(VirtioFeature.RING_PACKED) : 0n);
      let proc = await startCli(socket, disk);
      let fe = VhostUserFrontend.connect(socket);
      const acked = await fe.start({
        wantFeatures: want,
        memory: [ram.region],
        queues: [q.frontendQueue()],
        inflight: 'new',
      });
      expect(acked & want).toBe(want);
      const region = fe.inflight as FrontendInflight;
      // Twelve 4 KiB writes at once; the back-end completes them in a shuffled order.
      const status = (k: number) => 0x200000n + 0x1000n * BigInt(k);
      const mem = ram.memory;
      for (let k = 0; k < WRITES; k++) {
        const hdr = 0x100000n + 0x1000n * BigInt(k);
        const data = 0x180000n + 0x1000n * BigInt(k);
        mem.writeU32(hdr, BlkRequestType.OUT);
        mem.writeU32(hdr + 4n, 0);
        mem.writeU64(hdr + 8n, BigInt(k * SECTORS_PER_WRITE));
        mem.write(data, pattern(k));
        mem.writeU8(status(k), 0xff);
        q.driver.add(
          [
            { addr: hdr, len: 16 },
            { addr: data, len: 4096 },
          ],
          [{ addr: status(k), len: 1 }],
        );
      }
      q.kick.write(1n);
      const used: number[] = [];
      const reap = () => {
        for (let u = q.driver.getUsed(); u; u = q.driver.getUsed()) used.push(u.id); // throws on a buffer used twice
      };
      // Kill once some have completed and some have not.
      while (used.length < 3) {
        await new Promise((r) => setTimeout(r, 2));
        reap();
      }
      proc.child.kill('SIGKILL');
      await proc.exited;
      reap();
      expect(used.length).toBeLessThan(WRITES);
      fe.close();
      // QEMU reconnects to the new process with the same region and the base it has.
      proc = await startCli(socket, disk);
      fe = VhostUserFrontend.connect(socket);
      const base = packed ? PACKED_RING_START : mem.readU16((q as TestQueue).used + 2n);
      await fe.start({
        wantFeatures: want,
        memory: [ram.region],
        queues: [{ ...q.frontendQueue(), base }],
        inflight: region,
      });
      const deadline = Date.now() + 10_000;
      while (used.length < WRITES && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 5));
        reap();
      }
      const why = proc.output();
      expect(used.length, why).toBe(WRITES);
      expect(new Set(used).size, why).toBe(WRITES);
      for (let k = 0; k < WRITES; k++) expect(mem.readU8(status(k)), `write ${k}\n${why}`).toBe(BlkStatus.OK);
      expect(why).toMatch(/inflight record: [1-9]\d* request\(s\) in flight served again/);
      fe.close();
      proc.child.kill('SIGTERM');
      await proc.exited;
      const file = new Uint8Array(readFileSync(disk));
      for (let k = 0; k < WRITES; k++)
        expect(file.subarray(k * 4096, (k + 1) * 4096), `write ${k}`).toEqual(pattern(k));
      closeSync(region.fd);
      q.close();
      ram.close();
    }, 30_000);
  }
});
