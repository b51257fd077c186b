import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BlkConfigOffset,
  blkConfig,
  decodeBlkConfig,
  encodeBlkConfig,
  VIRTIO_BLK_CONFIG_SIZE,
} from './config.js';

describe('virtio_blk_config encoding', () => {
  it('puts every field at the offset of the C struct, little-endian', () => {
    const bytes = encodeBlkConfig(
      blkConfig({
        capacity: 0x0102_0304_0506_0708n,
        sizeMax: 0x1000,
        segMax: 126,
        geometry: { cylinders: 0x1234, heads: 16, sectors: 63 },
        blkSize: 4096,
        numQueues: 4,
        maxSecureEraseSeg: 0xaabbccdd,
      }),
    );
    expect(bytes.length).toBe(VIRTIO_BLK_CONFIG_SIZE);
    expect([...bytes.subarray(0, 8)]).toEqual([8, 7, 6, 5, 4, 3, 2, 1]);
    const v = new DataView(bytes.buffer);
    expect(v.getUint32(BlkConfigOffset.sizeMax, true)).toBe(0x1000);
    expect(v.getUint32(BlkConfigOffset.segMax, true)).toBe(126);
    expect(v.getUint16(16, true)).toBe(0x1234);
    expect(bytes[18]).toBe(16);
    expect(bytes[19]).toBe(63);
    expect(v.getUint32(20, true)).toBe(4096);
    expect(v.getUint16(34, true)).toBe(4);
    expect(v.getUint32(64, true)).toBe(0xaabbccdd);
  });

  it('decodes a shorter (older) layout with the missing fields as 0', () => {
    const full = encodeBlkConfig(blkConfig({ capacity: 99n, numQueues: 3, maxDiscardSectors: 7 }));
    const old = decodeBlkConfig(full.subarray(0, 24));
    expect(old.capacity).toBe(99n);
    expect(old.numQueues).toBe(0);
    expect(old.maxDiscardSectors).toBe(0);
  });

  it('property: decode(encode(c)) === c', () => {
    const u8 = fc.integer({ min: 0, max: 0xff });
    const u16 = fc.integer({ min: 0, max: 0xffff });
    const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
    const config = fc.record({
      capacity: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      sizeMax: u32,
      segMax: u32,
      geometry: fc.record({ cylinders: u16, heads: u8, sectors: u8 }),
      blkSize: u32,
      topology: fc.record({ physicalBlockExp: u8, alignmentOffset: u8, minIoSize: u16, optIoSize: u32 }),
      writeback: u8,
      numQueues: u16,
      maxDiscardSectors: u32,
      maxDiscardSeg: u32,
      discardSectorAlignment: u32,
      maxWriteZeroesSectors: u32,
      maxWriteZeroesSeg: u32,
      writeZeroesMayUnmap: u8,
      maxSecureEraseSectors: u32,
      maxSecureEraseSeg: u32,
      secureEraseSectorAlignment: u32,
    });
    fc.assert(
      fc.property(config, (c) => {
        expect(decodeBlkConfig(encodeBlkConfig(c))).toEqual(c);
      }),
    );
  });
});
