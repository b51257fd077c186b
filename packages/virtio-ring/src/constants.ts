/**
 * Descriptor and event-suppression flags of the virtio 1.x rings (sections 2.7
 * and 2.8). Area sizes, alignments and the queue-size rule are spec core:
 * `@rxvmm/virtio` (`queueAreaSizes`, `queueSizeError`).
 */

/** Descriptor flags (split and packed). */
export const VIRTQ_DESC_F_NEXT = 1;
/** VIRTQ_DESC_F_WRITE: the buffer is device-writable. */
export const VIRTQ_DESC_F_WRITE = 2;
/** VIRTQ_DESC_F_INDIRECT: the buffer holds a table of descriptors. */
export const VIRTQ_DESC_F_INDIRECT = 4;
/** Packed ring only: availability and used bits, compared against wrap counters. */
export const VIRTQ_DESC_F_AVAIL = 1 << 7;
/** Packed ring: the used bit (bit 15). */
export const VIRTQ_DESC_F_USED = 1 << 15;

/** Split ring: driver asks for no used-buffer interrupt. */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** Split ring: device asks for no available-buffer notification (kick). */
export const VIRTQ_USED_F_NO_NOTIFY = 1;

/** Packed ring event suppression flags. */
export const RING_EVENT_FLAGS_ENABLE = 0;
/** Packed ring event suppression: no notifications. */
export const RING_EVENT_FLAGS_DISABLE = 1;
/** Packed ring event suppression: notify at the descriptor the event offset names (EVENT_IDX). */
export const RING_EVENT_FLAGS_DESC = 2;

/** Indirect tables hold at most this many descriptors (the ID/next fields are 16-bit). */
export const MAX_INDIRECT_ENTRIES = 65535;
