import { GuestMemory, type Segment } from '@rxvmm/virtio-ring';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type BlockBackend,
  isSyncBlockBackend,
  isSyncRangesBlockBackend,
  MAX_RANGES,
  type SyncBlockBackend,
  type SyncRangesBlockBackend,
} from './backend.js';
import { BlkStatus, BlkRequestType as T } from './constants.js';
import { BlockRequestHandler } from './request-handler.js';
import { byteAddress, segmentRange } from './segments.js';

/** An in-memory backend that can be told to fail, to reach the IOERR paths of real I/O errors. */
class MemoryBackend implements BlockBackend {
  readonly bytes: Uint8Array;
  fail: 'read' | 'write' | 'flush' | 'short' | undefined;
  flushes = 0;
  constructor(
    size: number,
    readonly readOnly = false,
  ) {
    this.bytes = new Uint8Array(size);
  }
  get size() {
    return this.bytes.length;
  }
  async readv(buffers: Uint8Array[], position: number): Promise<number> {
    if (this.fail === 'read') throw Object.assign(new Error('EIO: disk on fire'), { code: 'EIO' });
    let p = position;
    for (const b of buffers) {
      b.set(this.bytes.subarray(p, p + b.length));
      p += b.length;
    }
    return this.fail === 'short' ? p - position - 512 : p - position;
  }
  async writev(buffers: Uint8Array[], position: number): Promise<number> {
    if (this.fail === 'write') throw new Error('ENOSPC: full');
    let p = position;
    for (const b of buffers) {
      this.bytes.set(b, p);
      p += b.length;
    }
    return p - position;
  }
  async flush(): Promise<void> {
    if (this.fail === 'flush') throw new Error('EIO: flush failed');
    this.flushes++;
  }
  async close(): Promise<void> {}
}

/** The same disk with synchronous transfers: the handler serves requests through `processSync`. */
class SyncMemoryBackend extends MemoryBackend implements SyncBlockBackend {
  readonly calls: string[] = [];
  readvSync(buffers: Uint8Array[], position: number): number {
    this.calls.push('readvSync');
    if (this.fail === 'read') throw Object.assign(new Error('EIO: disk on fire'), { code: 'EIO' });
    let p = position;
    for (const b of buffers) {
      b.set(this.bytes.subarray(p, p + b.length));
      p += b.length;
    }
    return this.fail === 'short' ? p - position - 512 : p - position;
  }
  writevSync(buffers: Uint8Array[], position: number): number {
    this.calls.push('writevSync');
    if (this.fail === 'write') throw new Error('ENOSPC: full');
    let p = position;
    for (const b of buffers) {
      this.bytes.set(b, p);
      p += b.length;
    }
    return p - position;
  }
  flushSync(): void {
    this.calls.push('flushSync');
    if (this.fail === 'flush') throw new Error('EIO: flush failed');
    this.flushes++;
  }
}

/**
 * The same disk taking (offset, length) ranges of one guest-memory region, checked as
 * `@rxvmm/sys`'s preadvRanges checks them (EFAULT outside the buffer).
 */
class RangesMemoryBackend extends SyncMemoryBackend implements SyncRangesBlockBackend {
  /** The ranges of every call, as [offset, length] pairs. */
  readonly rangeCalls: [number, number][][] = [];
  #pieces(memory: Uint8Array, ranges: Float64Array, count: number): Uint8Array[] {
    if (count > MAX_RANGES) throw Object.assign(new Error('EINVAL: too many ranges'), { code: 'EINVAL' });
    const pieces: Uint8Array[] = [];
    const call: [number, number][] = [];
    for (let i = 0; i < count; i++) {
      const [offset, length] = [ranges[2 * i]!, ranges[2 * i + 1]!];
      if (!(offset >= 0 && length >= 0 && length <= memory.byteLength - offset))
        throw Object.assign(new Error(`EFAULT: range ${i} outside the buffer`), { code: 'EFAULT' });
      pieces.push(memory.subarray(offset, offset + length));
      call.push([offset, length]);
    }
    this.rangeCalls.push(call);
    return pieces;
  }
  readRangesSync(memory: Uint8Array, ranges: Float64Array, count: number, position: number): number {
    const pieces = this.#pieces(memory, ranges, count);
    const n = this.readvSync(pieces, position);
    this.calls[this.calls.length - 1] = 'readRangesSync';
    return n;
  }
  writeRangesSync(memory: Uint8Array, ranges: Float64Array, count: number, position: number): number {
    const pieces = this.#pieces(memory, ranges, count);
    const n = this.writevSync(pieces, position);
    this.calls[this.calls.length - 1] = 'writeRangesSync';
    return n;
  }
}

/** Every kind of backend, for the tests that hold for each path (`process`, `processSync`, ranges). */
const backends = [
  ['asynchronous backend', (size: number, readOnly = false) => new MemoryBackend(size, readOnly)],
  ['synchronous backend', (size: number, readOnly = false) => new SyncMemoryBackend(size, readOnly)],
  ['ranges backend', (size: number, readOnly = false) => new RangesMemoryBackend(size, readOnly)],
] as const;

function memory() {
  const ram = new Uint8Array(1 << 16);
  return { ram, mem: new GuestMemory([{ guestPhysAddr: 0x1000n, bytes: ram }]) };
}

function chain(readable: Segment[], writable: Segment[]) {
  const sum = (s: Segment[]) => s.reduce((n, x) => n + x.len, 0);
  return { head: 0, readable, writable, readableLength: sum(readable), writableLength: sum(writable) };
}

function header(mem: GuestMemory, addr: bigint, type: number, sector: bigint): Segment {
  mem.writeU32(addr, type);
  mem.writeU64(addr + 8n, sector);
  return { addr, len: 16 };
}

describe('segment helpers', () => {
  const segs = [
    { addr: 0x100n, len: 10 },
    { addr: 0x200n, len: 6 },
    { addr: 0x300n, len: 4 },
  ];
  it('cuts byte ranges across segment boundaries', () => {
    expect(segmentRange(segs, 8, 10)).toEqual([
      { addr: 0x108n, len: 2 },
      { addr: 0x200n, len: 6 },
      { addr: 0x300n, len: 2 },
    ]);
    expect(segmentRange(segs, 20, 5)).toEqual([]);
    expect(segmentRange(segs, 0, 0)).toEqual([]);
  });
  it('finds the address of a byte', () => {
    expect(byteAddress(segs, 19)).toBe(0x303n);
    expect(byteAddress(segs, 10)).toBe(0x200n);
    expect(byteAddress(segs, 20)).toBeUndefined();
  });
});

describe('BlockRequestHandler', () => {
  it.each(backends)('turns backend failures into IOERR with status length 1 (%s)', async (_, make) => {
    const { mem } = memory();
    const backend = make(8192);
    const h = new BlockRequestHandler({ backend });
    for (const fail of ['read', 'short'] as const) {
      backend.fail = fail;
      const r = await h.process(
        mem,
        chain(
          [header(mem, 0x1000n, T.IN, 0n)],
          [
            { addr: 0x2000n, len: 1024 },
            { addr: 0x3000n, len: 1 },
          ],
        ),
      );
      expect(r.status).toBe(BlkStatus.IOERR);
      expect(r.usedLen).toBe(1);
      expect(mem.readU8(0x3000n)).toBe(BlkStatus.IOERR);
    }
    backend.fail = 'write';
    const w = await h.process(
      mem,
      chain([header(mem, 0x1000n, T.OUT, 0n), { addr: 0x2000n, len: 512 }], [{ addr: 0x3000n, len: 1 }]),
    );
    expect(w.status).toBe(BlkStatus.IOERR);
    expect(w.error).toContain('ENOSPC');
    backend.fail = 'flush';
    const f = await h.process(mem, chain([header(mem, 0x1000n, T.FLUSH, 0n)], [{ addr: 0x3000n, len: 1 }]));
    expect(f.status).toBe(BlkStatus.IOERR);
    expect(h.stats.ioErrors).toBe(4);
  });

  it.each(backends)('reads and writes guest memory in place (%s)', async (_, make) => {
    const { mem, ram } = memory();
    const backend = make(8192);
    backend.bytes.fill(0x5a, 512, 1024);
    const h = new BlockRequestHandler({ backend });
    const r = await h.process(
      mem,
      chain(
        [header(mem, 0x1000n, T.IN, 1n)],
        [
          { addr: 0x2000n, len: 512 },
          { addr: 0x3000n, len: 1 },
        ],
      ),
    );
    expect(r).toMatchObject({ type: T.IN, sector: 1n, status: BlkStatus.OK, usedLen: 513, bytes: 512 });
    expect(ram.subarray(0x1000, 0x1200).every((b) => b === 0x5a)).toBe(true);
    ram.fill(0xa5, 0x1000, 0x1400);
    const w = await h.process(
      mem,
      chain([header(mem, 0x4000n, T.OUT, 4n), { addr: 0x2000n, len: 1024 }], [{ addr: 0x3000n, len: 1 }]),
    );
    expect(w.status).toBe(BlkStatus.OK);
    expect(backend.bytes.subarray(2048, 3072).every((b) => b === 0xa5)).toBe(true);
    expect(backend.bytes[3072]).toBe(0);
  });

  it('a FLUSH waits for the writes in flight before it', async () => {
    const { mem } = memory();
    const order: string[] = [];
    const backend = new MemoryBackend(8192);
    const slowWrite = backend.writev.bind(backend);
    backend.writev = async (b, p) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      order.push('write');
      return slowWrite(b, p);
    };
    const flush = backend.flush.bind(backend);
    backend.flush = async () => {
      order.push('flush');
      return flush();
    };
    const h = new BlockRequestHandler({ backend });
    const write = h.process(
      mem,
      chain([header(mem, 0x1000n, T.OUT, 0n), { addr: 0x2000n, len: 512 }], [{ addr: 0x3000n, len: 1 }]),
    );
    const fl = h.process(mem, chain([header(mem, 0x1100n, T.FLUSH, 0n)], [{ addr: 0x3001n, len: 1 }]));
    expect(h.inflight).toBe(2);
    await h.drain();
    expect(h.inflight).toBe(0);
    expect(order).toEqual(['write', 'flush']);
    expect((await write).status).toBe(BlkStatus.OK);
    expect((await fl).status).toBe(BlkStatus.OK);
  });

  it('refuses a writable handler over a read-only backend and bad limits', () => {
    expect(() => new BlockRequestHandler({ backend: new MemoryBackend(512, true), readOnly: false })).toThrow(
      /EINVAL/,
    );
    expect(() => new BlockRequestHandler({ backend: new MemoryBackend(512), segMax: 0 })).toThrow(/EINVAL/);
    expect(() => new BlockRequestHandler({ backend: new MemoryBackend(512), sizeMax: 100 })).toThrow(
      /EINVAL/,
    );
    expect(new BlockRequestHandler({ backend: new MemoryBackend(1000) }).capacity).toBe(1n);
  });

  it('serves a synchronous backend in one call (processSync): nothing in flight, no promise', async () => {
    const { mem, ram } = memory();
    const backend = new SyncMemoryBackend(8192);
    backend.bytes.fill(0x5a, 512, 1024);
    const h = new BlockRequestHandler({ backend });
    expect(isSyncBlockBackend(backend)).toBe(true);
    expect(h.sync).toBe(true);
    const read = chain(
      [header(mem, 0x1000n, T.IN, 1n)],
      [
        { addr: 0x2000n, len: 512 },
        { addr: 0x3000n, len: 1 },
      ],
    );
    const r = h.processSync(mem, read);
    expect(r).toMatchObject({ type: T.IN, sector: 1n, status: BlkStatus.OK, usedLen: 513, bytes: 512 });
    expect(ram.subarray(0x1000, 0x1200).every((b) => b === 0x5a)).toBe(true);
    expect(h.inflight).toBe(0);
    // process() of a synchronous backend does the same work at once and hands back a settled promise.
    const p = h.process(mem, chain([header(mem, 0x1000n, T.FLUSH, 0n)], [{ addr: 0x3000n, len: 1 }]));
    expect(h.inflight).toBe(0);
    expect(backend.calls).toEqual(['readvSync', 'flushSync']);
    expect((await p).status).toBe(BlkStatus.OK);
    expect(h.stats).toMatchObject({ requests: 2, reads: 1, flushes: 1, bytesRead: 512 });
  });

  it('refuses processSync over an asynchronous backend (EINVAL), and a status byte it cannot write throws', () => {
    const { mem } = memory();
    const c = chain([header(mem, 0x1000n, T.FLUSH, 0n)], [{ addr: 0x3000n, len: 1 }]);
    expect(() => new BlockRequestHandler({ backend: new MemoryBackend(512) }).processSync(mem, c)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    const h = new BlockRequestHandler({ backend: new SyncMemoryBackend(512) });
    expect(() => h.processSync(mem, chain(c.readable, [{ addr: 0x100000n, len: 1 }]))).toThrow(
      /guest memory|region/,
    );
  });

  it('a ranges backend moves a request in one region with one call of (offset, length) pairs', () => {
    const { mem, ram } = memory(); // one region at 0x1000
    const backend = new RangesMemoryBackend(8192);
    backend.bytes.fill(0x3c, 1024, 2048);
    const h = new BlockRequestHandler({ backend });
    expect(isSyncRangesBlockBackend(backend)).toBe(true);
    expect(isSyncRangesBlockBackend(new SyncMemoryBackend(512))).toBe(false);
    // Data split over three descriptors, the status byte sharing the last one.
    const read = chain(
      [header(mem, 0x1000n, T.IN, 2n)],
      [
        { addr: 0x5000n, len: 512 },
        { addr: 0x2000n, len: 256 },
        { addr: 0x3000n, len: 257 },
      ],
    );
    const r = h.processSync(mem, read);
    expect(r).toMatchObject({ status: BlkStatus.OK, usedLen: 1025, bytes: 1024 });
    expect(backend.rangeCalls).toEqual([
      [
        [0x4000, 512],
        [0x1000, 256],
        [0x2000, 256],
      ],
    ]);
    expect(ram.subarray(0x4000, 0x4200).every((b) => b === 0x3c)).toBe(true);
    expect(ram[0x2100]).toBe(BlkStatus.OK);
    // A write: the data after the 16-byte header of the same descriptor.
    ram.fill(0x99, 0x10, 0x10 + 512);
    header(mem, 0x1000n, T.OUT, 4n);
    const w2 = h.processSync(mem, chain([{ addr: 0x1000n, len: 16 + 512 }], [{ addr: 0x3000n, len: 1 }]));
    expect(w2).toMatchObject({ status: BlkStatus.OK, usedLen: 1, bytes: 512 });
    expect(backend.rangeCalls.at(-1)).toEqual([[0x10, 512]]);
    expect(backend.bytes.subarray(2048, 2560).every((b) => b === 0x99)).toBe(true);
    expect(backend.calls).toEqual(['readRangesSync', 'writeRangesSync']);
  });

  it('a ranges backend falls back to views when the pieces lie in two regions or one spans them', () => {
    const lo = new Uint8Array(0x2000);
    const hi = new Uint8Array(0x2000);
    const mem = new GuestMemory([
      { guestPhysAddr: 0x1000n, bytes: lo },
      { guestPhysAddr: 0x3000n, bytes: hi },
    ]);
    const backend = new RangesMemoryBackend(8192);
    backend.bytes.fill(0x42, 0, 2048);
    const h = new BlockRequestHandler({ backend });
    header(mem, 0x1000n, T.IN, 0n);
    const twoRegions = chain(
      [{ addr: 0x1000n, len: 16 }],
      [
        { addr: 0x1200n, len: 512 },
        { addr: 0x3200n, len: 512 },
        { addr: 0x3000n, len: 1 },
      ],
    );
    expect(h.processSync(mem, twoRegions)).toMatchObject({ status: BlkStatus.OK, bytes: 1024 });
    const spanning = chain(
      [{ addr: 0x1000n, len: 16 }],
      [
        { addr: 0x2f00n, len: 512 },
        { addr: 0x3800n, len: 1 },
      ],
    );
    expect(h.processSync(mem, spanning)).toMatchObject({ status: BlkStatus.OK, bytes: 512 });
    expect(backend.rangeCalls).toEqual([]);
    expect(backend.calls).toEqual(['readvSync', 'readvSync']);
    expect(lo.subarray(0x200, 0x400).every((b) => b === 0x42)).toBe(true);
    expect(hi.subarray(0x200, 0x400).every((b) => b === 0x42)).toBe(true);
    expect(
      lo.subarray(0x1f00).every((b) => b === 0x42) && hi.subarray(0, 0x100).every((b) => b === 0x42),
    ).toBe(true);
  });

  it('a ranges backend that refuses a range (EFAULT) fails the request with IOERR, not the device', () => {
    const { mem, ram } = memory();
    const backend = new RangesMemoryBackend(8192);
    backend.readRangesSync = () => {
      throw Object.assign(new Error('preadvRanges: range 0 is outside the buffer'), { code: 'EFAULT' });
    };
    const h = new BlockRequestHandler({ backend });
    const r = h.processSync(mem, chain([header(mem, 0x1000n, T.IN, 0n)], [{ addr: 0x2000n, len: 513 }]));
    expect(r).toMatchObject({ status: BlkStatus.IOERR, usedLen: 1 });
    expect(r.error).toMatch(/outside the buffer/);
    expect(ram[0x1200]).toBe(BlkStatus.IOERR);
  });

  it('a header split over two descriptors, and a data buffer across two memory regions, are still served', () => {
    // Two adjacent regions: a segment spanning them goes through a bounce buffer.
    const lo = new Uint8Array(0x2000);
    const hi = new Uint8Array(0x2000);
    const mem = new GuestMemory([
      { guestPhysAddr: 0x1000n, bytes: lo },
      { guestPhysAddr: 0x3000n, bytes: hi },
    ]);
    const backend = new SyncMemoryBackend(8192);
    backend.bytes.fill(0x77, 0, 1024);
    const h = new BlockRequestHandler({ backend });
    mem.writeU32(0x1000n, T.IN);
    mem.writeU64(0x1108n, 0n);
    const r = h.processSync(
      mem,
      chain(
        [
          { addr: 0x1000n, len: 8 },
          { addr: 0x1100n, len: 8 },
        ],
        [
          { addr: 0x2e00n, len: 1024 },
          { addr: 0x3800n, len: 1 },
        ],
      ),
    );
    expect(r).toMatchObject({ status: BlkStatus.OK, usedLen: 1025, bytes: 1024 });
    expect(lo.subarray(0x1e00).every((b) => b === 0x77)).toBe(true);
    expect(hi.subarray(0, 0x200).every((b) => b === 0x77)).toBe(true);
    expect(hi[0x800]).toBe(BlkStatus.OK);
  });

  it('writes GET_ID into a short buffer as far as it fits', async () => {
    const { mem, ram } = memory();
    const h = new BlockRequestHandler({
      backend: new MemoryBackend(512),
      serial: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
    });
    const r = await h.process(
      mem,
      chain(
        [header(mem, 0x1000n, T.GET_ID, 0n)],
        [
          { addr: 0x2000n, len: 8 },
          { addr: 0x3000n, len: 1 },
        ],
      ),
    );
    expect(r.usedLen).toBe(9);
    expect(new TextDecoder().decode(ram.subarray(0x1000, 0x1008))).toBe('ABCDEFGH');
    expect(h.serial.length).toBe(20);
  });
});

describe('transfers of 4 GiB or more', () => {
  it('checks the real sector count against the capacity (no 32-bit truncation of the length)', async () => {
    // Descriptors may overlap, so a few in 2 GiB of sparse guest RAM add up to 4 GiB + 512 bytes.
    const big = new Uint8Array(2 ** 31);
    const mem = new GuestMemory([{ guestPhysAddr: 0n, bytes: big }]);
    const calls: number[] = [];
    const backend: BlockBackend = {
      size: 8 * 512,
      readOnly: false,
      readv: async (buffers) => {
        calls.push(buffers.reduce((n, b) => n + b.length, 0));
        return calls.at(-1) as number;
      },
      writev: async (buffers) => {
        calls.push(buffers.reduce((n, b) => n + b.length, 0));
        return calls.at(-1) as number;
      },
      flush: async () => {},
      close: async () => {},
    };
    const h = new BlockRequestHandler({ backend, sizeMax: 0xffff_ffff });
    const hdr = header(mem, 0n, T.OUT, 0n);
    const half = { addr: 0x1000n, len: 2 ** 31 - 0x1000 };
    const rest = { addr: 0x1000n, len: 0x2000 + 512 };
    const c = chain([hdr, half, half, rest], [{ addr: 0x800n, len: 1 }]);
    expect(c.readableLength - 16).toBe(2 ** 32 + 512);
    const r = await h.process(mem, c);
    expect(r.status).toBe(BlkStatus.IOERR);
    expect(r.error).toMatch(/beyond the capacity/);
    expect(calls).toEqual([]);
    expect(big[0x800]).toBe(BlkStatus.IOERR);
  });
});

describe('property: hostile chains', () => {
  it.each(backends)(
    'never throw, write guest memory only inside the writable segments and the disk only inside its capacity (%s)',
    async (_, make) => {
      const RAM = 1 << 16;
      const BASE = 0x1000n;
      const segment = fc.record({
        off: fc.integer({ min: 0, max: RAM - 1 }),
        len: fc.integer({ min: 1, max: 4096 }),
      });
      const arb = fc.record({
        header: fc.uint8Array({ minLength: 16, maxLength: 16 }),
        type: fc.constantFrom(0, 1, 4, 8, 11, 13, 0xffffffff),
        sector: fc.oneof(fc.bigInt({ min: 0n, max: 40n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })),
        readable: fc.array(segment, { maxLength: 5 }),
        writable: fc.array(segment, { maxLength: 5 }),
        readOnly: fc.boolean(),
      });
      await fc.assert(
        fc.asyncProperty(arb, async ({ header, type, sector, readable, writable, readOnly }) => {
          const ram = new Uint8Array(RAM);
          const mem = new GuestMemory([{ guestPhysAddr: BASE, bytes: ram }]);
          // keep segments inside guest memory (the ring already guarantees that) but let them overlap
          const clip = (s: { off: number; len: number }) => ({
            addr: BASE + BigInt(s.off),
            len: Math.min(s.len, RAM - s.off),
          });
          const r = readable.map(clip);
          const w = writable.map(clip);
          const first = r[0];
          if (first && first.len >= 16) {
            const view = new DataView(header.buffer);
            view.setUint32(0, type, true);
            view.setBigUint64(8, sector, true);
            mem.write(first.addr, header);
          }
          const backend = make(32 * 512, readOnly);
          const writes: [number, number][] = [];
          const writev = backend.writev.bind(backend);
          backend.writev = (bufs, pos) => {
            writes.push([pos, bufs.reduce((n, b) => n + b.length, 0)]);
            return writev(bufs, pos);
          };
          if (backend instanceof RangesMemoryBackend) {
            const writeRangesSync = backend.writeRangesSync.bind(backend);
            backend.writeRangesSync = (memory, ranges, count, pos) => {
              let n = 0;
              for (let i = 0; i < count; i++) n += ranges[2 * i + 1]!;
              writes.push([pos, n]);
              return writeRangesSync(memory, ranges, count, pos);
            };
          }
          if (backend instanceof SyncMemoryBackend) {
            const writevSync = backend.writevSync.bind(backend);
            backend.writevSync = (bufs, pos) => {
              writes.push([pos, bufs.reduce((n, b) => n + b.length, 0)]);
              return writevSync(bufs, pos);
            };
          }
          const h = new BlockRequestHandler({ backend, readOnly, segMax: 4, sizeMax: 2048 });
          const before = ram.slice();
          const result = await h.process(mem, chain(r, w));
          for (const [pos, len] of writes) {
            expect(pos).toBeGreaterThanOrEqual(0);
            expect(pos + len).toBeLessThanOrEqual(32 * 512);
          }
          if (readOnly) expect(writes).toEqual([]);
          // every changed byte of guest memory lies in a writable segment
          for (let i = 0; i < RAM; i++) {
            if (ram[i] === before[i]) continue;
            const a = BASE + BigInt(i);
            expect(w.some((s) => a >= s.addr && a < s.addr + BigInt(s.len))).toBe(true);
          }
          const writableTotal = w.reduce((n, s) => n + s.len, 0);
          if (writableTotal === 0) expect(result).toMatchObject({ status: undefined, usedLen: 0 });
          else expect(result.usedLen).toBeLessThanOrEqual(writableTotal);
        }),
        { numRuns: 300 },
      );
    },
  );
});
