import { GuestMemory } from '@rxvmm/guest-memory';
import { describe, expect, it } from 'vitest';
import { MemoryTable } from './memory-table.js';

const region = (guestPhysAddr: bigint, memorySize: bigint, mmapOffset: bigint, mapping: ArrayBuffer) => ({
  guestPhysAddr,
  memorySize,
  userspaceAddr: 0x7f00_0000_0000n + guestPhysAddr,
  mmapOffset,
  mapping,
});

describe('MemoryTable.toGuestMemory', () => {
  it('serves each region from its mapping at mmap_offset, zero-copy', () => {
    const low = new ArrayBuffer(0x3000);
    const high = new ArrayBuffer(0x1000);
    new Uint8Array(low)[0x1000] = 0xaa; // mmap_offset 0x1000: guest-physical 0 is byte 0x1000 of the fd
    const memory = MemoryTable.toGuestMemory([
      region(0n, 0x2000n, 0x1000n, low),
      region(0x10000n, 0x1000n, 0n, high),
    ]);
    expect(memory).toBeInstanceOf(GuestMemory);
    expect(memory.readU8(0n)).toBe(0xaa);
    memory.writeU32(0x10004n, 0x1234_5678);
    expect(new DataView(high).getUint32(4, true)).toBe(0x1234_5678);
    expect(memory.isValidRange(0n, 0x2000)).toBe(true);
    expect(memory.isValidRange(0x2000n, 1)).toBe(false);
    expect(memory.isValidRange(0x10000n, 0x1000)).toBe(true);
  });

  it('refuses a region that does not fit its mapping (EINVAL) and overlapping regions (EFAULT)', () => {
    const buffer = new ArrayBuffer(0x2000);
    expect(() => MemoryTable.toGuestMemory([region(0n, 0x2000n, 0x1000n, buffer)])).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() =>
      MemoryTable.toGuestMemory([region(0n, 0x2000n, 0n, buffer), region(0x1000n, 0x1000n, 0n, buffer)]),
    ).toThrow(expect.objectContaining({ code: 'EFAULT' }));
  });
});
