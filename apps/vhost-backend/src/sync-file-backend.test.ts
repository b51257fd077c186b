import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlkRequestType, BlkStatus, isSyncBlockBackend, isSyncRangesBlockBackend } from '@rxvmm/virtio-blk';
import { ChainBuffer, GuestMemory } from '@rxvmm/virtio-ring';
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
    expect(threadpool.handleChainBuffer).toBeUndefined();
    await threadpool.close();
  });

  it('moves (offset, length) ranges of one buffer in one call, going on after a short transfer', async () => {
    const b = SyncFileBackend.open(path);
    expect(isSyncRangesBlockBackend(b)).toBe(true);
    const memory = new Uint8Array(4096);
    memory.fill(0xb1, 0, 512);
    memory.fill(0xb2, 2048, 2048 + 1024);
    expect(b.writeRangesSync(memory, Float64Array.of(2048, 1024, 0, 512), 2, 1024)).toBe(1536);
    const file = readFileSync(path);
    expect(file.subarray(1024, 2048).every((x) => x === 0xb2)).toBe(true);
    expect(file.subarray(2048, 2560).every((x) => x === 0xb1)).toBe(true);
    const back = new Uint8Array(4096);
    expect(b.readRangesSync(back, Float64Array.of(512, 512, 0, 512), 2, 2048)).toBe(1024);
    expect(back.subarray(512, 1024).every((x) => x === 0xb1)).toBe(true);
    expect(back.subarray(0, 512).every((x) => x === 0x11)).toBe(true);
    // Short at the end of the file: the second call gets the ranges left and reads 0.
    expect(b.readRangesSync(back, Float64Array.of(0, 1024, 1024, 1024), 2, 8192 - 1536)).toBe(1536);
    expect(b.readRangesSync(back, Float64Array.of(0, 512), 1, 8192)).toBe(0);
    // A range outside the buffer never reaches the kernel: EFAULT, nothing read.
    back.fill(0);
    expect(() => b.readRangesSync(back, Float64Array.of(0, 512, 4000, 512), 2, 0)).toThrow(
      expect.objectContaining({ code: 'EFAULT' }),
    );
    expect(back.every((x) => x === 0)).toBe(true);
    expect(() => b.writeRangesSync(back, Float64Array.of(-1, 512), 1, 0)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    await b.close();
    expect(() => b.readRangesSync(back, Float64Array.of(0, 512), 1, 0)).toThrow(/EBADF/);
  });

  it('serves chains popped into a ChainBuffer (handleChainBuffer) with one preadv per request', async () => {
    const device = await openBlkDevice({ path, io: 'sync' });
    const ram = new Uint8Array(0x8000);
    const mem = new GuestMemory([{ guestPhysAddr: 0x10000n, bytes: ram }]);
    mem.writeU32(0x10100n, BlkRequestType.IN);
    mem.writeU64(0x10108n, 2n);
    const chain = new ChainBuffer(2);
    chain.head = 3;
    chain.pushReadable(0x10100, 16);
    for (let i = 0; i < 4; i++) chain.pushWritable(0x11000 + 0x1000 * i, 256); // grows the buffer
    chain.pushWritable(0x10200, 1);
    const handle = device.handleChainBuffer!;
    expect(handle(chain, mem, 0)).toBe(1025);
    expect(ram[0x200]).toBe(BlkStatus.OK);
    for (let i = 0; i < 4; i++)
      expect(ram.subarray(0x1000 * (i + 1), 0x1000 * (i + 1) + 256).every((x) => x === 0x11)).toBe(true);
    expect(ram[0x1000 + 256]).toBe(0);
    // A sector past the disk: IOERR in the status byte, and the device goes on.
    mem.writeU64(0x10108n, 100n);
    expect(handle(chain, mem, 0)).toBe(1);
    expect(ram[0x200]).toBe(BlkStatus.IOERR);
    // A status byte outside guest memory throws (the ring would not have let it through).
    chain.writableAddr[chain.writableCount - 1] = 0x90000;
    expect(() => handle(chain, mem, 0)).toThrow();
    await device.close();
  });
});
