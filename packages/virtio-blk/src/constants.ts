/** virtio-blk constants (virtio 1.2 section 5.2). */
import { VirtioDeviceType } from '@rxvmm/virtio';

/** Device ID of a block device (`VirtioDeviceType.BLOCK` of `@rxvmm/virtio`). */
export const VIRTIO_ID_BLOCK = VirtioDeviceType.BLOCK;

/** The protocol's unit: sectors are always 512 bytes, whatever blk_size says (5.2.5). */
export const SECTOR_SIZE = 512;
/** log2 of `SECTOR_SIZE`. */
export const SECTOR_SHIFT = 9;

/** Feature bits (5.2.3), as bit numbers. */
export const BlkFeature = {
  SIZE_MAX: 1,
  SEG_MAX: 2,
  GEOMETRY: 4,
  RO: 5,
  BLK_SIZE: 6,
  FLUSH: 9,
  TOPOLOGY: 10,
  CONFIG_WCE: 11,
  MQ: 12,
  DISCARD: 13,
  WRITE_ZEROES: 14,
  LIFETIME: 15,
  SECURE_ERASE: 16,
} as const;

/** Request types (5.2.6). */
export const BlkRequestType = {
  IN: 0,
  OUT: 1,
  FLUSH: 4,
  GET_ID: 8,
  GET_LIFETIME: 10,
  DISCARD: 11,
  WRITE_ZEROES: 13,
  SECURE_ERASE: 14,
} as const;

/** Status byte values written at the end of every request. */
export const BlkStatus = {
  OK: 0,
  IOERR: 1,
  UNSUPP: 2,
} as const;

/** struct virtio_blk_req header: le32 type, le32 reserved, le64 sector. */
export const BLK_REQUEST_HEADER_SIZE = 16;
/** GET_ID returns up to this many bytes of serial number (NUL-padded when shorter). */
export const VIRTIO_BLK_ID_BYTES = 20;
