import { describe, expect, it } from 'vitest';
import { GuestMemoryError } from './errors.js';
import { GuestMemory } from './guest-memory.js';

function twoRegions() {
  const a = new Uint8Array(0x1000);
  const b = new Uint8Array(new SharedArrayBuffer(0x2000));
  // [0x1000, 0x2000) and [0x2000, 0x4000) are adjacent; a hole follows.
  return {
    a,
    b,
    mem: new GuestMemory([
      { guestPhysAddr: 0x2000n, bytes: b },
      { guestPhysAddr: 0x1000n, bytes: a },
    ]),
  };
}

describe('GuestMemory', () => {
  it('reads and writes little-endian u8..u64 at guest-physical addresses', () => {
    const { a, mem } = twoRegions();
    mem.writeU8(0x1000n, 0xab);
    mem.writeU16(0x1002n, 0x1234);
    mem.writeU32(0x1004n, 0xdeadbeef);
    mem.writeU64(0x1008n, 0x0102030405060708n);
    expect([...a.subarray(0, 16)]).toEqual([
      0xab, 0, 0x34, 0x12, 0xef, 0xbe, 0xad, 0xde, 8, 7, 6, 5, 4, 3, 2, 1,
    ]);
    expect(mem.readU8(0x1000n)).toBe(0xab);
    expect(mem.readU16(0x1002n)).toBe(0x1234);
    expect(mem.readU32(0x1004n)).toBe(0xdeadbeef);
    expect(mem.readU64(0x1008n)).toBe(0x0102030405060708n);
    mem.writeU64(0x2ff8n, -1n); // truncated to u64
    expect(mem.readU64(0x2ff8n)).toBe(0xffffffffffffffffn);
  });

  it('rejects every access that is not fully inside memory with GuestMemoryError (EFAULT)', () => {
    const { mem } = twoRegions();
    const bad: [string, () => unknown][] = [
      ['below', () => mem.readU8(0xfffn)],
      ['straddles the end', () => mem.readU32(0x3ffen)],
      ['hole', () => mem.writeU16(0x5000n, 1)],
      ['negative', () => mem.readU8(-1n)],
      ['2^64', () => mem.readU8(1n << 64n)],
      ['wraps 2^64', () => mem.read((1n << 64n) - 2n, new Uint8Array(4))],
      ['huge', () => mem.readU64(0xffff_ffff_ffff_fff8n)],
      ['slice across regions', () => mem.slice(0x1ff0n, 0x20)],
    ];
    for (const [what, f] of bad) {
      expect(f, what).toThrow(GuestMemoryError);
      try {
        f();
      } catch (error) {
        expect((error as GuestMemoryError).code).toBe('EFAULT');
      }
    }
    expect(() => mem.read((1n << 64n) - 2n, new Uint8Array(4))).toThrow(/wraps past 2\^64/);
  });

  it('copies byte ranges across adjacent regions and slices without copying', () => {
    const { a, b, mem } = twoRegions();
    const src = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
    mem.write(0x1ff0n, src);
    expect([...a.subarray(0xff0)]).toEqual([...src.subarray(0, 16)]);
    expect([...b.subarray(0, 16)]).toEqual([...src.subarray(16)]);
    const dst = new Uint8Array(32);
    mem.read(0x1ff0n, dst);
    expect(dst).toEqual(src);
    const view = mem.slice(0x2000n, 4);
    view[0] = 0x77;
    expect(b[0]).toBe(0x77); // same memory
    expect(view.buffer).toBe(b.buffer);
    expect(mem.isValidRange(0x1000n, 0x3000)).toBe(true);
    expect(mem.isValidRange(0x1000n, 0x3001)).toBe(false);
  });

  it('does acquire/release index accesses with Atomics, on shared and non-shared buffers', () => {
    const { mem, a, b } = twoRegions();
    mem.storeReleaseU16(0x1002n, 0xbeef);
    mem.storeReleaseU32(0x2004n, 0xcafef00d);
    expect(mem.loadAcquireU16(0x1002n)).toBe(0xbeef);
    expect(mem.loadAcquireU32(0x2004n)).toBe(0xcafef00d);
    expect(a[2]).toBe(0xef);
    expect(b[7]).toBe(0xca);
    expect(() => mem.loadAcquireU16(0x1001n)).toThrow(/misaligned/);
  });

  it('validates the region set', () => {
    const x = new Uint8Array(16);
    expect(
      () =>
        new GuestMemory([
          { guestPhysAddr: 0n, bytes: x },
          { guestPhysAddr: 8n, bytes: x },
        ]),
    ).toThrow(/overlap/);
    expect(() => new GuestMemory([{ guestPhysAddr: 1n << 53n, bytes: x }])).toThrow(/2\^53/);
    expect(() => new GuestMemory([{ guestPhysAddr: -16n, bytes: x }])).toThrow(GuestMemoryError);
  });

  it('works with regions that are subviews of one buffer', () => {
    const buf = new ArrayBuffer(0x3000);
    const mem = new GuestMemory([
      { guestPhysAddr: 0x10_0000_0000n, bytes: new Uint8Array(buf, 0x1000, 0x1000) },
      { guestPhysAddr: 0n, bytes: new Uint8Array(buf, 0, 0x1000) },
    ]);
    mem.writeU32(0x10_0000_0004n, 7);
    expect(new Uint32Array(buf)[0x1004 / 4]).toBe(7);
    expect(mem.loadAcquireU32(0x10_0000_0004n)).toBe(7);
    expect(() => mem.readU8(0x1000n)).toThrow(GuestMemoryError);
  });

  it('has no rounding hole at 2^53: the fast number checks stay exact', () => {
    const top = 2 ** 53;
    const mem = new GuestMemory([{ guestPhysAddr: BigInt(top - 0x1000), bytes: new Uint8Array(0x1000) }]);
    expect(mem.covers(top - 1, 1)).toBe(true);
    expect(mem.covers(top - 1, 2)).toBe(false); // top - 1 + 2 rounds to 2^53 as a double
    expect(mem.regionOf(top - 1, 2)).toBe(-1);
    expect(mem.covers(top, 1)).toBe(false);
    expect(mem.covers(top + 2, 0)).toBe(false);
    expect(mem.isValidRange(BigInt(top - 1), 2)).toBe(false);
    expect(() => mem.readU16(BigInt(top - 1))).toThrow(GuestMemoryError);
  });
});
