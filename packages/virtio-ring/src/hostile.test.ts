import { describe, expect, it } from 'vitest';
import {
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_USED,
  VIRTQ_DESC_F_WRITE,
} from './constants.js';
import { VirtqueueError, type VirtqueueErrorReason } from './errors.js';
import { GuestMemory } from '@rxvmm/guest-memory';
import { PackedQueue } from './packed-queue.js';
import { SplitQueue } from './split-queue.js';
import { MockPackedDriver, MockSplitDriver } from './testing/index.js';
import type { Virtqueue } from './virtqueue.js';

const NEXT = VIRTQ_DESC_F_NEXT;
const WRITE = VIRTQ_DESC_F_WRITE;
const INDIRECT = VIRTQ_DESC_F_INDIRECT;
/** Packed "available in lap 1" bits. */
const AV = VIRTQ_DESC_F_AVAIL;

function expectVqError(
  f: () => unknown,
  reason: VirtqueueErrorReason,
  code: 'EINVAL' | 'EFAULT' = 'EINVAL',
): VirtqueueError {
  let caught: unknown;
  try {
    f();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(VirtqueueError);
  const e = caught as VirtqueueError;
  expect(e.reason).toBe(reason);
  expect(e.code).toBe(code);
  return e;
}

/** A device error breaks the queue: the same error again, never an escape to other state. */
function expectBroken(
  q: Virtqueue,
  reason: VirtqueueErrorReason,
  code: 'EINVAL' | 'EFAULT' = 'EINVAL',
): void {
  const e = expectVqError(() => q.pop(), reason, code);
  expect(q.broken).toBe(e);
  expect(() => q.pop()).toThrow(e);
}

describe('split ring: hostile driver input', () => {
  const setup = (opts: { size?: number; indirect?: boolean } = {}) => {
    const drv = new MockSplitDriver({ size: opts.size ?? 8, indirect: opts.indirect ?? false });
    const buf = drv.alloc(4096);
    return { drv, q: drv.device(), buf };
  };

  it('head index >= queue size', () => {
    const { drv, q } = setup();
    drv.publishHead(8);
    expectBroken(q, 'head-out-of-range');
  });

  it('next out of range', () => {
    const { drv, q, buf } = setup();
    drv.setDescriptor(0, { addr: buf, len: 16, flags: NEXT, next: 8 });
    drv.publishHead(0);
    expectBroken(q, 'next-out-of-range');
  });

  it('a chain longer than the queue (a loop)', () => {
    const { drv, q, buf } = setup({ size: 4 });
    for (let i = 0; i < 4; i++) drv.setDescriptor(i, { addr: buf, len: 16, flags: NEXT, next: (i + 1) % 4 });
    drv.publishHead(2);
    expectBroken(q, 'chain-too-long');
  });

  it('a self-loop of one descriptor', () => {
    const { drv, q, buf } = setup();
    drv.setDescriptor(3, { addr: buf, len: 16, flags: NEXT, next: 3 });
    drv.publishHead(3);
    expectBroken(q, 'chain-too-long');
  });

  it('a loop inside an indirect table', () => {
    const { drv, q, buf } = setup({ indirect: true });
    const table = drv.alloc(32);
    drv.poke64(table, buf);
    drv.poke32(table + 8n, 8);
    drv.poke16(table + 12n, NEXT);
    drv.poke16(table + 14n, 1);
    drv.poke64(table + 16n, buf);
    drv.poke32(table + 24n, 8);
    drv.poke16(table + 28n, NEXT);
    drv.poke16(table + 30n, 0);
    drv.setDescriptor(0, { addr: table, len: 32, flags: INDIRECT });
    drv.publishHead(0);
    expectBroken(q, 'chain-too-long');
  });

  it('indirect inside indirect', () => {
    const { drv, q, buf } = setup({ indirect: true });
    const table = drv.alloc(16);
    drv.poke64(table, buf);
    drv.poke32(table + 8n, 16);
    drv.poke16(table + 12n, INDIRECT);
    drv.setDescriptor(0, { addr: table, len: 16, flags: INDIRECT });
    drv.publishHead(0);
    expectBroken(q, 'nested-indirect');
  });

  it('indirect descriptor with NEXT set', () => {
    const { drv, q, buf } = setup({ indirect: true });
    drv.setDescriptor(0, { addr: buf, len: 16, flags: INDIRECT | NEXT, next: 1 });
    drv.setDescriptor(1, { addr: buf, len: 16 });
    drv.publishHead(0);
    expectBroken(q, 'indirect-with-next');
  });

  it('indirect table of length 0', () => {
    const { drv, q, buf } = setup({ indirect: true });
    drv.setDescriptor(0, { addr: buf, len: 0, flags: INDIRECT });
    drv.publishHead(0);
    expectBroken(q, 'indirect-table-length');
  });

  it('indirect table length not a multiple of 16', () => {
    const { drv, q, buf } = setup({ indirect: true });
    drv.setDescriptor(0, { addr: buf, len: 24, flags: INDIRECT });
    drv.publishHead(0);
    expectBroken(q, 'indirect-table-length');
  });

  it('a buffer inside an indirect table pointing outside guest memory', () => {
    const { drv, q } = setup({ indirect: true });
    const table = drv.alloc(16);
    drv.poke64(table, 0xdead_0000_0000n);
    drv.poke32(table + 8n, 64);
    drv.setDescriptor(0, { addr: table, len: 16, flags: INDIRECT });
    drv.publishHead(0);
    expectBroken(q, 'descriptor-out-of-memory', 'EFAULT');
  });

  it('an indirect table straddling two memory regions is refused (EFAULT), buffers may straddle', () => {
    const buf = new ArrayBuffer(0x3000);
    const mem = new GuestMemory([
      { guestPhysAddr: 0x10000n, bytes: new Uint8Array(buf, 0, 0x1000) },
      { guestPhysAddr: 0x11000n, bytes: new Uint8Array(buf, 0x2000, 0x1000) }, // adjacent in the guest only
    ]);
    const cfg = { size: 4, descTable: 0x10000n, driverArea: 0x10100n, deviceArea: 0x10200n, indirect: true };
    const q = new SplitQueue(mem, cfg);
    mem.writeU64(0x10000n, 0x10ff0n); // a buffer across the boundary: fine
    mem.writeU32(0x10008n, 0x20);
    mem.writeU64(0x10010n, 0x10ff0n); // an indirect table across it: refused
    mem.writeU32(0x10018n, 0x20);
    mem.writeU16(0x1001cn, INDIRECT);
    mem.writeU16(0x10104n, 0);
    mem.writeU16(0x10106n, 1);
    mem.storeReleaseU16(0x10102n, 2);
    const c = q.pop()!;
    expect(c.readable).toEqual([{ addr: 0x10ff0n, len: 0x20 }]);
    expectBroken(q, 'descriptor-out-of-memory', 'EFAULT');
  });

  it('indirect descriptor without VIRTIO_F_INDIRECT_DESC', () => {
    const { drv, q, buf } = setup();
    drv.setDescriptor(0, { addr: buf, len: 16, flags: INDIRECT });
    drv.publishHead(0);
    expectBroken(q, 'indirect-not-negotiated');
  });

  it('indirect table outside guest memory', () => {
    const { drv, q } = setup({ indirect: true });
    drv.setDescriptor(0, { addr: 0x4000_0000n, len: 32, flags: INDIRECT });
    drv.publishHead(0);
    expectBroken(q, 'descriptor-out-of-memory', 'EFAULT');
  });

  it('descriptor address outside guest memory', () => {
    const { drv, q } = setup();
    drv.setDescriptor(0, { addr: 0x1000n, len: 16 }); // below the RAM at 0x10000
    drv.publishHead(0);
    expectBroken(q, 'descriptor-out-of-memory', 'EFAULT');
  });

  it('descriptor length running past the end of guest memory', () => {
    const { drv, q, buf } = setup();
    const end = drv.guestBase + BigInt(drv.buffer.byteLength);
    drv.setDescriptor(0, { addr: buf, len: 16 });
    drv.setDescriptor(1, { addr: end - 8n, len: 9 });
    drv.publishHead(0);
    drv.publishHead(1);
    expect(q.pop()).not.toBeNull();
    expectBroken(q, 'descriptor-out-of-memory', 'EFAULT');
  });

  it('descriptor address + length wrapping 2^64', () => {
    const { drv, q } = setup();
    drv.setDescriptor(0, { addr: 0xffff_ffff_ffff_fff0n, len: 0x20 });
    drv.publishHead(0);
    const e = expectVqError(() => q.pop(), 'descriptor-out-of-memory', 'EFAULT');
    expect(e.message).toMatch(/wraps past 2\^64/);
  });

  it('descriptor at an address above 2^53 (not a physical address)', () => {
    const { drv, q } = setup();
    drv.setDescriptor(0, { addr: (1n << 53n) + 0x10000n, len: 1 });
    drv.publishHead(0);
    expectBroken(q, 'descriptor-out-of-memory', 'EFAULT');
  });

  it('a writable descriptor before a readable one (strict device), accepted by a lenient one', () => {
    const { drv, buf } = setup();
    drv.setDescriptor(0, { addr: buf, len: 16, flags: WRITE | NEXT, next: 1 });
    drv.setDescriptor(1, { addr: buf + 16n, len: 16 });
    drv.publishHead(0);
    expectBroken(drv.device(), 'write-before-read');
    const lenient = drv.device({ strictOrder: false }).pop()!;
    expect(lenient.readable).toEqual([{ addr: buf + 16n, len: 16 }]);
    expect(lenient.writable).toEqual([{ addr: buf, len: 16 }]);
  });

  it('a writable before a readable one inside an indirect table', () => {
    const { drv, q, buf } = setup({ indirect: true });
    const table = drv.alloc(32);
    drv.poke64(table, buf);
    drv.poke32(table + 8n, 8);
    drv.poke16(table + 12n, WRITE | NEXT);
    drv.poke16(table + 14n, 1);
    drv.poke64(table + 16n, buf);
    drv.poke32(table + 24n, 8);
    drv.setDescriptor(0, { addr: table, len: 32, flags: INDIRECT });
    drv.publishHead(0);
    expectBroken(q, 'write-before-read');
  });

  it('next out of range inside an indirect table', () => {
    const { drv, q, buf } = setup({ indirect: true });
    const table = drv.alloc(16);
    drv.poke64(table, buf);
    drv.poke32(table + 8n, 8);
    drv.poke16(table + 12n, NEXT);
    drv.poke16(table + 14n, 1);
    drv.setDescriptor(0, { addr: table, len: 16, flags: INDIRECT });
    drv.publishHead(0);
    expectBroken(q, 'next-out-of-range');
  });

  it('avail idx moved by more than the queue size', () => {
    const { drv, q } = setup();
    drv.setAvailIdx(9);
    expectBroken(q, 'avail-idx-jump');
  });

  it('avail idx moved backwards (= more than the queue size ahead, mod 2^16)', () => {
    const { drv, q } = setup();
    drv.setAvailIdx(0xffff);
    expectBroken(q, 'avail-idx-jump');
  });

  it('queue size not a power of two', () => {
    const drv = new MockSplitDriver({ size: 8 });
    expectVqError(() => drv.device({ size: 6 }), 'bad-queue-size');
  });

  it('queue size 0 or above 32768, or above the transport maximum', () => {
    const mem = new GuestMemory([{ guestPhysAddr: 0n, bytes: new Uint8Array(1 << 21) }]);
    const at = { descTable: 0n, driverArea: 0x10_0000n, deviceArea: 0x18_0000n };
    expectVqError(() => new SplitQueue(mem, { ...at, size: 0 }), 'bad-queue-size');
    expectVqError(() => new SplitQueue(mem, { ...at, size: 65536 }), 'bad-queue-size');
    expectVqError(() => new SplitQueue(mem, { ...at, size: 256, maxSize: 128 }), 'bad-queue-size');
    expect(
      new SplitQueue(mem, {
        ...at,
        size: 32768,
        descTable: 0n,
        driverArea: 0x8_0000n,
        deviceArea: 0x10_0000n,
      }).size,
    ).toBe(32768);
  });

  it('descriptor table not 16-byte aligned', () => {
    const drv = new MockSplitDriver({ size: 8 });
    expectVqError(() => drv.device({ descTable: drv.config.descTable + 8n }), 'ring-misaligned');
  });

  it('available ring not 2-byte aligned', () => {
    const drv = new MockSplitDriver({ size: 8 });
    expectVqError(() => drv.device({ driverArea: drv.config.driverArea + 1n }), 'ring-misaligned');
  });

  it('used ring not 4-byte aligned', () => {
    const drv = new MockSplitDriver({ size: 8 });
    expectVqError(() => drv.device({ deviceArea: drv.config.deviceArea + 2n }), 'ring-misaligned');
  });

  it('ring areas outside guest memory', () => {
    const drv = new MockSplitDriver({ size: 8 });
    const end = drv.guestBase + BigInt(drv.buffer.byteLength);
    expectVqError(() => drv.device({ descTable: 0n }), 'ring-out-of-memory', 'EFAULT');
    expectVqError(() => drv.device({ descTable: end - 64n }), 'ring-out-of-memory', 'EFAULT');
    expectVqError(() => drv.device({ driverArea: end - 8n }), 'ring-out-of-memory', 'EFAULT');
    expectVqError(() => drv.device({ deviceArea: 0xffff_ffff_ffff_fff0n }), 'ring-out-of-memory', 'EFAULT');
  });

  it('pushUsed with a head that is not a descriptor index is a device bug (EINVAL)', () => {
    const { q } = setup();
    expectVqError(() => q.pushUsed(8, 0), 'bad-used-id');
    expectVqError(() => q.pushUsed(0, -1), 'bad-used-len');
  });

  it('never touches memory outside its region', () => {
    // Guest RAM is the middle of a bigger buffer; hostile descriptors point just outside.
    const backing = new Uint8Array(0x30000).fill(0xee);
    const ram = backing.subarray(0x10000, 0x20000);
    ram.fill(0);
    const mem = new GuestMemory([{ guestPhysAddr: 0x100000n, bytes: ram }]);
    const cfg = {
      size: 4,
      descTable: 0x100000n,
      driverArea: 0x100100n,
      deviceArea: 0x100200n,
      indirect: true,
    };
    const q = new SplitQueue(mem, cfg);
    mem.writeU64(0x100000n, 0x110000n - 4n);
    mem.writeU32(0x100008n, 8); // crosses the end of RAM
    mem.writeU16(0x100104n, 0);
    mem.storeReleaseU16(0x100102n, 1);
    expectBroken(q, 'descriptor-out-of-memory', 'EFAULT');
    expect(backing.subarray(0, 0x10000).every((b) => b === 0xee)).toBe(true);
    expect(backing.subarray(0x20000).every((b) => b === 0xee)).toBe(true);
  });
});

describe('packed ring: hostile driver input', () => {
  const setup = (opts: { size?: number; indirect?: boolean } = {}) => {
    const drv = new MockPackedDriver({ size: opts.size ?? 8, indirect: opts.indirect ?? false });
    return { drv, q: drv.device(), buf: drv.alloc(4096) };
  };

  it('a descriptor list longer than the queue', () => {
    const { drv, q, buf } = setup({ size: 4 });
    for (let i = 0; i < 4; i++) drv.setDescriptor(i, { addr: buf, len: 8, flags: AV | NEXT });
    expectBroken(q, 'chain-too-long');
  });

  it('indirect descriptor with NEXT set', () => {
    const { drv, q, buf } = setup({ indirect: true });
    drv.setDescriptor(1, { addr: buf, len: 8, flags: AV });
    drv.setDescriptor(0, { addr: buf, len: 16, flags: AV | INDIRECT | NEXT });
    expectBroken(q, 'indirect-with-next');
  });

  it('indirect descriptor inside a NEXT-linked list', () => {
    const { drv, q, buf } = setup({ indirect: true });
    drv.setDescriptor(1, { addr: buf, len: 16, flags: AV | INDIRECT });
    drv.setDescriptor(0, { addr: buf, len: 8, flags: AV | NEXT });
    expectBroken(q, 'indirect-in-chain');
  });

  it('indirect inside indirect', () => {
    const { drv, q, buf } = setup({ indirect: true });
    const table = drv.alloc(16);
    drv.poke64(table, buf);
    drv.poke32(table + 8n, 16);
    drv.poke16(table + 14n, INDIRECT);
    drv.setDescriptor(0, { addr: table, len: 16, flags: AV | INDIRECT });
    expectBroken(q, 'nested-indirect');
  });

  it('indirect table of length 0 / not a multiple of 16', () => {
    const a = setup({ indirect: true });
    a.drv.setDescriptor(0, { addr: a.buf, len: 0, flags: AV | INDIRECT });
    expectBroken(a.q, 'indirect-table-length');
    const b = setup({ indirect: true });
    b.drv.setDescriptor(0, { addr: b.buf, len: 40, flags: AV | INDIRECT });
    expectBroken(b.q, 'indirect-table-length');
  });

  it('indirect without the feature', () => {
    const { drv, q, buf } = setup();
    drv.setDescriptor(0, { addr: buf, len: 16, flags: AV | INDIRECT });
    expectBroken(q, 'indirect-not-negotiated');
  });

  it('descriptor outside guest memory / wrapping 2^64', () => {
    const a = setup();
    a.drv.setDescriptor(0, { addr: 0x20n, len: 8, flags: AV });
    expectBroken(a.q, 'descriptor-out-of-memory', 'EFAULT');
    const b = setup();
    b.drv.setDescriptor(0, { addr: 0xffff_ffff_ffff_ff00n, len: 0x100000, flags: AV });
    const e = expectVqError(() => b.q.pop(), 'descriptor-out-of-memory', 'EFAULT');
    expect(e.message).toMatch(/wraps/);
  });

  it('writable before readable', () => {
    const { drv, q, buf } = setup();
    drv.setDescriptor(1, { addr: buf, len: 8, flags: AV });
    drv.setDescriptor(0, { addr: buf, len: 8, flags: AV | WRITE | NEXT });
    expectBroken(q, 'write-before-read');
  });

  it('a buffer ID reused while in flight', () => {
    const { drv, q, buf } = setup();
    drv.setDescriptor(0, { addr: buf, len: 8, id: 5, flags: AV });
    drv.setDescriptor(1, { addr: buf, len: 8, id: 5, flags: AV });
    expect(q.pop()!.head).toBe(5);
    expectBroken(q, 'buffer-id-in-use');
  });

  it('descriptors of the wrong lap are not available (no error, no access)', () => {
    const { drv, q, buf } = setup();
    drv.setDescriptor(0, { addr: buf, len: 8, flags: AV | VIRTQ_DESC_F_USED }); // used in lap 1
    expect(q.pop()).toBeNull();
    drv.setDescriptor(0, { addr: 0n, len: 8, flags: 0 }); // lap 0 "available": wrong wrap
    expect(q.pop()).toBeNull();
    expect(q.broken).toBeNull();
  });

  it('queue size 0, above 32768 or above the transport maximum; any other size is fine', () => {
    const drv = new MockPackedDriver({ size: 8 });
    expectVqError(() => drv.device({ size: 0 }), 'bad-queue-size');
    expectVqError(() => drv.device({ size: 32769 }), 'bad-queue-size');
    expectVqError(() => drv.device({ size: 8, maxSize: 4 }), 'bad-queue-size');
    expect(drv.device({ size: 7 }).size).toBe(7);
  });

  it('misaligned areas: descriptor ring 16, event structures 4', () => {
    const drv = new MockPackedDriver({ size: 8 });
    expectVqError(() => drv.device({ descTable: drv.config.descTable + 4n }), 'ring-misaligned');
    expectVqError(() => drv.device({ driverArea: drv.config.driverArea + 2n }), 'ring-misaligned');
    expectVqError(() => drv.device({ deviceArea: drv.config.deviceArea + 2n }), 'ring-misaligned');
  });

  it('areas outside guest memory', () => {
    const drv = new MockPackedDriver({ size: 8 });
    expectVqError(() => drv.device({ descTable: 0x10n }), 'ring-out-of-memory', 'EFAULT');
    expectVqError(() => drv.device({ driverArea: 0xfff0n }), 'ring-out-of-memory', 'EFAULT');
    expectVqError(() => drv.device({ deviceArea: 1n << 60n }), 'ring-out-of-memory', 'EFAULT');
  });

  it('pushUsed of an ID that is not in flight is a device bug (EINVAL)', () => {
    const { q } = setup();
    expectVqError(() => q.pushUsed(3, 0), 'bad-used-id');
  });
});

describe('rings over an unaligned host buffer', () => {
  it('refuses areas whose host address is misaligned for Atomics', () => {
    const buf = new ArrayBuffer(0x4000);
    const mem = new GuestMemory([{ guestPhysAddr: 0n, bytes: new Uint8Array(buf, 2, 0x3000) }]);
    expectVqError(
      () => new SplitQueue(mem, { size: 4, descTable: 0n, driverArea: 0x100n, deviceArea: 0x200n }),
      'ring-misaligned',
    );
    expectVqError(
      () => new PackedQueue(mem, { size: 4, descTable: 0n, driverArea: 0x100n, deviceArea: 0x200n }),
      'ring-misaligned',
    );
  });
});
