import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlkRequestType, BlkStatus, isSyncBlockBackend } from '@rxvmm/virtio-blk';
import { GuestMemory } from '@rxvmm/virtio-ring';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openBlkDevice } from './blk-device.js';
import { SyncFileBackend } from './sync-file-backend.js';

describe('SyncFileBackend', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'rxvmm-sync-backend-'));
    path = join(dir, 'disk.img');
    writeFileSync(path, new Uint8Array(8192).fill(0x11));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('moves scatter/gather lists on the calling thread, short only at the end of the file', async () => {
    const b = SyncFileBackend.open(path);
    expect(isSyncBlockBackend(b)).toBe(true);
    const parts = [new Uint8Array(512).fill(0xa1), new Uint8Array(1024).fill(0xa2)];
    expect(b.writevSync(parts, 4096)).toBe(1536);
    b.flushSync();
    const back = [new Uint8Array(512), new Uint8Array(1024)];
    expect(b.readvSync(back, 4096)).toBe(1536);
    expect(back[0]!.every((x) => x === 0xa1) && back[1]!.every((x) => x === 0xa2)).toBe(true);
    expect(b.readvSync([new Uint8Array(1024)], 8192 - 512)).toBe(512);
    expect(b.readvSync([], 0)).toBe(0);
    // The promise forms do the same work.
    expect(await b.readv([new Uint8Array(512)], 0)).toBe(512);
    await b.close();
    expect(readFileSync(path)[4096]).toBe(0xa1);
    expect(() => b.readvSync([new Uint8Array(512)], 0)).toThrow(/EBADF/);
  });

  it('makes the block device answer each request with a number, not a promise', async () => {
    const device = await openBlkDevice({ path, io: 'sync' });
    const ram = new Uint8Array(0x4000);
    const mem = new GuestMemory([{ guestPhysAddr: 0n, bytes: ram }]);
    mem.writeU32(0x100n, BlkRequestType.IN);
    mem.writeU64(0x108n, 1n);
    const chain = {
      head: 0,
      readable: [{ addr: 0x100n, len: 16 }],
      writable: [
        { addr: 0x1000n, len: 512 },
        { addr: 0x2000n, len: 1 },
      ],
      readableLength: 16,
      writableLength: 513,
    };
    expect(device.handleChain(chain, mem, 0)).toBe(513);
    expect(ram[0x2000]).toBe(BlkStatus.OK);
    expect(ram.subarray(0x1000, 0x1200).every((x) => x === 0x11)).toBe(true);
    await device.close();
    const threadpool = await openBlkDevice({ path, io: 'async' });
    expect(threadpool.handleChain(chain, mem, 0)).toBeInstanceOf(Promise);
    await threadpool.close();
  });
});
