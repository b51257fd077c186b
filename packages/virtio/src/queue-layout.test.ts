import { describe, expect, it } from 'vitest';
import {
  PACKED_MAX_SIZE,
  queueAreaAlignments,
  queueAreaSizes,
  queueLayoutError,
  queueSizeError,
  SPLIT_MAX_SIZE,
} from './queue-layout.js';

describe('queueSizeError (the queue-size rule)', () => {
  it('refuses 0 in both formats', () => {
    expect(queueSizeError(0, false)).toMatch(/queue size 0 is outside 1\.\.32768/);
    expect(queueSizeError(0, true)).toMatch(/queue size 0 is outside 1\.\.32768/);
  });

  it('needs a power of two for a split ring, not for a packed one', () => {
    expect(queueSizeError(3, false)).toMatch(/split queue size 3 is not a power of two/);
    expect(queueSizeError(3, true)).toBeUndefined();
    expect(queueSizeError(1, false)).toBeUndefined();
    expect(queueSizeError(256, false)).toBeUndefined();
  });

  it('caps both formats at 32768', () => {
    expect(SPLIT_MAX_SIZE).toBe(32768);
    expect(PACKED_MAX_SIZE).toBe(32768);
    expect(queueSizeError(32768, false)).toBeUndefined();
    expect(queueSizeError(32768, true)).toBeUndefined();
    expect(queueSizeError(32769, false)).toMatch(/outside 1\.\.32768/);
    expect(queueSizeError(32769, true)).toMatch(/outside 1\.\.32768/);
  });

  it('honours the transport maximum (QueueNumMax), never above the format maximum', () => {
    expect(queueSizeError(256, false, 256)).toBeUndefined();
    expect(queueSizeError(512, false, 256)).toMatch(/queue size 512 is outside 1\.\.256/);
    expect(queueSizeError(200, true, 128)).toMatch(/outside 1\.\.128/);
    expect(queueSizeError(65536, false, 1 << 20)).toMatch(/outside 1\.\.32768/);
    expect(queueSizeError(1, false, 0)).toMatch(/outside 1\.\.0/); // a queue that does not exist
  });

  it('refuses sizes that are not integers', () => {
    expect(queueSizeError(1.5, true)).toMatch(/outside/);
    expect(queueSizeError(Number.NaN, false)).toMatch(/outside/);
  });
});

describe('queue area sizes and alignments', () => {
  it('split: 16-byte descriptors, avail and used rings with their event-idx fields', () => {
    expect(queueAreaSizes(256, false)).toEqual({ desc: 4096, driver: 6 + 2 * 256, device: 6 + 8 * 256 });
    expect(queueAreaAlignments(false)).toEqual({ desc: 16, driver: 2, device: 4 });
  });

  it('packed: the descriptor ring and two 4-byte event suppression structures', () => {
    expect(queueAreaSizes(100, true)).toEqual({ desc: 1600, driver: 4, device: 4 });
    expect(queueAreaAlignments(true)).toEqual({ desc: 16, driver: 4, device: 4 });
  });
});

describe('queueLayoutError', () => {
  const good = { index: 1, size: 256, descTable: 0x10000n, driverArea: 0x11000n, deviceArea: 0x12000n };
  const inFirstMiB = (addr: bigint, len: number) => addr + BigInt(len) <= 0x100000n;

  it('accepts a well-formed split or packed queue', () => {
    expect(queueLayoutError(good, { isValidRange: inFirstMiB })).toBeUndefined();
    expect(
      queueLayoutError({ ...good, size: 100, packed: true }, { isValidRange: inFirstMiB }),
    ).toBeUndefined();
  });

  it('applies the size rule of the queue format and its maxSize, naming the queue', () => {
    expect(queueLayoutError({ ...good, size: 0 })).toBe('queue 1: queue size 0 is outside 1..32768');
    expect(queueLayoutError({ ...good, size: 100 })).toMatch(/^queue 1: split queue size 100 is not a power/);
    expect(queueLayoutError({ ...good, size: 512, maxSize: 256 })).toMatch(/outside 1\.\.256/);
  });

  it('checks each area alignment (split 16/2/4, packed 16/4/4)', () => {
    expect(queueLayoutError({ ...good, descTable: 0x10008n })).toMatch(
      /descriptor area 0x10008 is not 16-byte aligned/,
    );
    expect(queueLayoutError({ ...good, driverArea: 0x11001n })).toMatch(
      /driver area 0x11001 is not 2-byte aligned/,
    );
    expect(queueLayoutError({ ...good, deviceArea: 0x12002n })).toMatch(
      /device area 0x12002 is not 4-byte aligned/,
    );
    expect(queueLayoutError({ ...good, driverArea: 0x11002n })).toBeUndefined();
    expect(queueLayoutError({ ...good, packed: true, driverArea: 0x11002n })).toMatch(
      /driver area 0x11002 is not 4-byte aligned/,
    );
  });

  it('refuses an area that wraps 2^64', () => {
    // a 256-entry used ring is 2054 bytes: from 2^64 - 1024 it runs past the end
    expect(queueLayoutError({ ...good, deviceArea: 0xffff_ffff_ffff_fc00n })).toBe(
      'queue 1: device area wraps the address space',
    );
    // an area that ends just below 2^64 is not a wrap (guest memory decides whether it is usable)
    const device = (1n << 64n) - BigInt(queueAreaSizes(good.size, false).device) - 2n; // 4-byte aligned
    expect(queueLayoutError({ ...good, deviceArea: device })).toBeUndefined();
  });

  it('refuses an area outside guest memory when given the memory check', () => {
    expect(queueLayoutError({ ...good, descTable: 0x4000_0000n }, { isValidRange: inFirstMiB })).toBe(
      'queue 1: descriptor area [0x40000000, +4096) is outside guest memory',
    );
    expect(queueLayoutError({ ...good, deviceArea: 0xffc00n }, { isValidRange: inFirstMiB })).toMatch(
      /device area \[0xffc00, \+2054\) is outside guest memory/,
    );
    expect(queueLayoutError({ ...good, descTable: 0x4000_0000n })).toBeUndefined(); // no check given
  });
});
