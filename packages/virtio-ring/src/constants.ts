/** Constants of the virtio 1.x ring layouts (spec sections 2.7 and 2.8). */

/** Descriptor flags (split and packed). */
export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
/** Packed ring only: availability and used bits, compared against wrap counters. */
export const VIRTQ_DESC_F_AVAIL = 1 << 7;
export const VIRTQ_DESC_F_USED = 1 << 15;

/** Split ring: driver asks for no used-buffer interrupt. */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** Split ring: device asks for no available-buffer notification (kick). */
export const VIRTQ_USED_F_NO_NOTIFY = 1;

/** Packed ring event suppression flags. */
export const RING_EVENT_FLAGS_ENABLE = 0;
export const RING_EVENT_FLAGS_DISABLE = 1;
export const RING_EVENT_FLAGS_DESC = 2;

/** Feature bits that change ring behaviour. */
export const VIRTIO_F_INDIRECT_DESC = 28;
export const VIRTIO_F_EVENT_IDX = 29;
export const VIRTIO_F_RING_PACKED = 34;

/** Largest queue sizes the formats can express (split: 2^15 by the spec's transports; packed: 2^15). */
export const SPLIT_MAX_SIZE = 32768;
export const PACKED_MAX_SIZE = 32768;

/** Size of one descriptor, split or packed, and required ring alignments. */
export const DESC_SIZE = 16;
export const SPLIT_DESC_ALIGN = 16;
export const SPLIT_AVAIL_ALIGN = 2;
export const SPLIT_USED_ALIGN = 4;
export const PACKED_DESC_ALIGN = 16;
export const PACKED_EVENT_ALIGN = 4;

/** Indirect tables hold at most this many descriptors (the ID/next fields are 16-bit). */
export const MAX_INDIRECT_ENTRIES = 65535;

/** Byte sizes of the split ring areas for a queue of `size` entries (with the event-idx fields). */
export function splitDescTableBytes(size: number): number {
  return 16 * size;
}
export function splitAvailBytes(size: number): number {
  return 6 + 2 * size;
}
export function splitUsedBytes(size: number): number {
  return 6 + 8 * size;
}
