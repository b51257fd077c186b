/**
 * struct virtio_blk_config (virtio 1.2 section 5.2.4), little-endian, as a
 * plain object and its byte encoding. The vhost-user back-end answers
 * GET_CONFIG with these bytes; the MMIO transport serves them at 0x100.
 */

/** Size of the 1.2 layout (up to secure_erase_sector_alignment). */
export const VIRTIO_BLK_CONFIG_SIZE = 72;

/** `virtio_blk_geometry`: the legacy CHS geometry (VIRTIO_BLK_F_GEOMETRY). */
export interface BlkGeometry {
  cylinders: number;
  heads: number;
  sectors: number;
}

/** `virtio_blk_topology`: alignment hints (VIRTIO_BLK_F_TOPOLOGY). */
export interface BlkTopology {
  physicalBlockExp: number;
  alignmentOffset: number;
  minIoSize: number;
  optIoSize: number;
}

/** The configuration space of virtio-blk (`struct virtio_blk_config`, virtio 1.2 5.2.4), decoded. */
export interface BlkConfig {
  /** Capacity in 512-byte sectors. */
  capacity: bigint;
  sizeMax: number;
  segMax: number;
  geometry: BlkGeometry;
  blkSize: number;
  topology: BlkTopology;
  writeback: number;
  numQueues: number;
  maxDiscardSectors: number;
  maxDiscardSeg: number;
  discardSectorAlignment: number;
  maxWriteZeroesSectors: number;
  maxWriteZeroesSeg: number;
  writeZeroesMayUnmap: number;
  maxSecureEraseSectors: number;
  maxSecureEraseSeg: number;
  secureEraseSectorAlignment: number;
}

/** Byte offsets of the fields. */
export const BlkConfigOffset = {
  capacity: 0,
  sizeMax: 8,
  segMax: 12,
  geometryCylinders: 16,
  geometryHeads: 18,
  geometrySectors: 19,
  blkSize: 20,
  physicalBlockExp: 24,
  alignmentOffset: 25,
  minIoSize: 26,
  optIoSize: 28,
  writeback: 32,
  numQueues: 34,
  maxDiscardSectors: 36,
  maxDiscardSeg: 40,
  discardSectorAlignment: 44,
  maxWriteZeroesSectors: 48,
  maxWriteZeroesSeg: 52,
  writeZeroesMayUnmap: 56,
  maxSecureEraseSectors: 60,
  maxSecureEraseSeg: 64,
  secureEraseSectorAlignment: 68,
} as const;

/** A config with every field zero except the ones given. */
export function blkConfig(fields: Partial<BlkConfig> & { capacity: bigint }): BlkConfig {
  return {
    sizeMax: 0,
    segMax: 0,
    geometry: { cylinders: 0, heads: 0, sectors: 0 },
    blkSize: 512,
    topology: { physicalBlockExp: 0, alignmentOffset: 0, minIoSize: 0, optIoSize: 0 },
    writeback: 0,
    numQueues: 1,
    maxDiscardSectors: 0,
    maxDiscardSeg: 0,
    discardSectorAlignment: 0,
    maxWriteZeroesSectors: 0,
    maxWriteZeroesSeg: 0,
    writeZeroesMayUnmap: 0,
    maxSecureEraseSectors: 0,
    maxSecureEraseSeg: 0,
    secureEraseSectorAlignment: 0,
    ...fields,
  };
}

/** Encodes `config` into `VIRTIO_BLK_CONFIG_SIZE` little-endian bytes. */
export function encodeBlkConfig(config: BlkConfig): Uint8Array {
  const out = new Uint8Array(VIRTIO_BLK_CONFIG_SIZE);
  const v = new DataView(out.buffer);
  const O = BlkConfigOffset;
  v.setBigUint64(O.capacity, config.capacity, true);
  v.setUint32(O.sizeMax, config.sizeMax, true);
  v.setUint32(O.segMax, config.segMax, true);
  v.setUint16(O.geometryCylinders, config.geometry.cylinders, true);
  v.setUint8(O.geometryHeads, config.geometry.heads);
  v.setUint8(O.geometrySectors, config.geometry.sectors);
  v.setUint32(O.blkSize, config.blkSize, true);
  v.setUint8(O.physicalBlockExp, config.topology.physicalBlockExp);
  v.setUint8(O.alignmentOffset, config.topology.alignmentOffset);
  v.setUint16(O.minIoSize, config.topology.minIoSize, true);
  v.setUint32(O.optIoSize, config.topology.optIoSize, true);
  v.setUint8(O.writeback, config.writeback);
  v.setUint16(O.numQueues, config.numQueues, true);
  v.setUint32(O.maxDiscardSectors, config.maxDiscardSectors, true);
  v.setUint32(O.maxDiscardSeg, config.maxDiscardSeg, true);
  v.setUint32(O.discardSectorAlignment, config.discardSectorAlignment, true);
  v.setUint32(O.maxWriteZeroesSectors, config.maxWriteZeroesSectors, true);
  v.setUint32(O.maxWriteZeroesSeg, config.maxWriteZeroesSeg, true);
  v.setUint8(O.writeZeroesMayUnmap, config.writeZeroesMayUnmap);
  v.setUint32(O.maxSecureEraseSectors, config.maxSecureEraseSectors, true);
  v.setUint32(O.maxSecureEraseSeg, config.maxSecureEraseSeg, true);
  v.setUint32(O.secureEraseSectorAlignment, config.secureEraseSectorAlignment, true);
  return out;
}

/** Decodes the bytes of a virtio_blk_config; missing trailing bytes (older, shorter layouts) read as 0. */
export function decodeBlkConfig(bytes: Uint8Array): BlkConfig {
  const full = new Uint8Array(VIRTIO_BLK_CONFIG_SIZE);
  full.set(bytes.subarray(0, VIRTIO_BLK_CONFIG_SIZE));
  const v = new DataView(full.buffer);
  const O = BlkConfigOffset;
  return {
    capacity: v.getBigUint64(O.capacity, true),
    sizeMax: v.getUint32(O.sizeMax, true),
    segMax: v.getUint32(O.segMax, true),
    geometry: {
      cylinders: v.getUint16(O.geometryCylinders, true),
      heads: v.getUint8(O.geometryHeads),
      sectors: v.getUint8(O.geometrySectors),
    },
    blkSize: v.getUint32(O.blkSize, true),
    topology: {
      physicalBlockExp: v.getUint8(O.physicalBlockExp),
      alignmentOffset: v.getUint8(O.alignmentOffset),
      minIoSize: v.getUint16(O.minIoSize, true),
      optIoSize: v.getUint32(O.optIoSize, true),
    },
    writeback: v.getUint8(O.writeback),
    numQueues: v.getUint16(O.numQueues, true),
    maxDiscardSectors: v.getUint32(O.maxDiscardSectors, true),
    maxDiscardSeg: v.getUint32(O.maxDiscardSeg, true),
    discardSectorAlignment: v.getUint32(O.discardSectorAlignment, true),
    maxWriteZeroesSectors: v.getUint32(O.maxWriteZeroesSectors, true),
    maxWriteZeroesSeg: v.getUint32(O.maxWriteZeroesSeg, true),
    writeZeroesMayUnmap: v.getUint8(O.writeZeroesMayUnmap),
    maxSecureEraseSectors: v.getUint32(O.maxSecureEraseSectors, true),
    maxSecureEraseSeg: v.getUint32(O.maxSecureEraseSeg, true),
    secureEraseSectorAlignment: v.getUint32(O.secureEraseSectorAlignment, true),
  };
}
