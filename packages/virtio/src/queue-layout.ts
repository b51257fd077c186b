/**
 * The virtqueue layout rules (virtio 1.2 sections 2.7 and 2.8): where a queue
 * lives, how large its three areas are, how they are aligned, and which sizes
 * are legal. Transports check a driver's set-up with these at DRIVER_OK, rings
 * resolve their areas with them, back-ends validate vhost-user ring messages
 * with them: this file is their one home.
 */

/** Where a queue lives and what was negotiated (transport registers + feature bits). */
export interface QueueConfig {
  /** Queue Size. Split: power of two; packed: any value. At most `maxSize` (and 32768). */
  size: number;
  /** Descriptor Area: split descriptor table / packed descriptor ring. */
  descTable: bigint;
  /** Driver Area: split available ring / packed driver event suppression. */
  driverArea: bigint;
  /** Device Area: split used ring / packed device event suppression. */
  deviceArea: bigint;
  /** VIRTIO_F_RING_PACKED negotiated: the queue is a packed ring. */
  packed?: boolean;
  /** VIRTIO_F_EVENT_IDX negotiated. */
  eventIdx?: boolean;
  /** VIRTIO_F_INDIRECT_DESC negotiated. */
  indirect?: boolean;
  /** The transport's maximum queue size (QueueNumMax); 32768 when absent. */
  maxSize?: number;
  /**
   * Reject a device-readable descriptor after a device-writable one (the spec's
   * driver rule). Default true; a lenient device may turn it off.
   */
  strictOrder?: boolean;
}

/** Size of one descriptor, split or packed. */
export const DESC_SIZE = 16;
/** Area alignments (2.7: desc 16, avail 2, used 4; 2.8: desc 16, event suppression 4). */
export const SPLIT_DESC_ALIGN = 16;
/** Split ring: the driver (available) area's alignment. */
export const SPLIT_AVAIL_ALIGN = 2;
/** Split ring: the device (used) area's alignment. */
export const SPLIT_USED_ALIGN = 4;
/** Packed ring: the descriptor ring's alignment. */
export const PACKED_DESC_ALIGN = 16;
/** Packed ring: the event suppression areas' alignment. */
export const PACKED_EVENT_ALIGN = 4;
/** Largest queue sizes the formats can express (split: 2^15 by the spec's transports; packed: 2^15). */
export const SPLIT_MAX_SIZE = 32768;
/** Largest packed queue size (2^15). */
export const PACKED_MAX_SIZE = 32768;

/** Byte sizes of the three areas of a queue of `size` entries (split sizes include the event-idx fields). */
export function queueAreaSizes(
  size: number,
  packed: boolean,
): { desc: number; driver: number; device: number } {
  if (packed) return { desc: DESC_SIZE * size, driver: 4, device: 4 };
  // split: flags + idx + ring[size] + used_event, and flags + idx + used[size] + avail_event
  return { desc: DESC_SIZE * size, driver: 6 + 2 * size, device: 6 + 8 * size };
}

/** Alignments of the descriptor, driver and device areas. */
export function queueAreaAlignments(packed: boolean): { desc: number; driver: number; device: number } {
  return packed
    ? { desc: PACKED_DESC_ALIGN, driver: PACKED_EVENT_ALIGN, device: PACKED_EVENT_ALIGN }
    : { desc: SPLIT_DESC_ALIGN, driver: SPLIT_AVAIL_ALIGN, device: SPLIT_USED_ALIGN };
}

/**
 * The queue-size rule: 1..min(maxSize, 32768), and a power of two for a split
 * ring. Returns why `size` is illegal, or undefined.
 */
export function queueSizeError(size: number, packed: boolean, maxSize?: number): string | undefined {
  const formatMax = packed ? PACKED_MAX_SIZE : SPLIT_MAX_SIZE;
  const limit = Math.min(maxSize ?? formatMax, formatMax);
  if (!Number.isInteger(size) || size < 1 || size > limit) return `queue size ${size} is outside 1..${limit}`;
  if (!packed && (size & (size - 1)) !== 0) return `split queue size ${size} is not a power of two`;
  return undefined;
}

const U64_LIMIT = 1n << 64n;

/** Is [addr, addr+len) guest memory the device may access? */
export type GuestRangeCheck = (addr: bigint, len: number) => boolean;

/** Options of `queueLayoutError`. */
export interface QueueLayoutOptions {
  /** When given, every area must lie in guest memory according to it. */
  isValidRange?: GuestRangeCheck | undefined;
}

/** Returns why the queue cannot be used, or undefined when it is well formed. */
export function queueLayoutError(
  q: QueueConfig & { index: number },
  options: QueueLayoutOptions = {},
): string | undefined {
  const packed = q.packed ?? false;
  const sizeError = queueSizeError(q.size, packed, q.maxSize);
  if (sizeError) return `queue ${q.index}: ${sizeError}`;
  const sizes = queueAreaSizes(q.size, packed);
  const aligns = queueAreaAlignments(packed);
  const areas: [string, bigint, number, number][] = [
    ['descriptor area', q.descTable, sizes.desc, aligns.desc],
    ['driver area', q.driverArea, sizes.driver, aligns.driver],
    ['device area', q.deviceArea, sizes.device, aligns.device],
  ];
  for (const [name, addr, len, align] of areas) {
    if (addr % BigInt(align) !== 0n)
      return `queue ${q.index}: ${name} 0x${addr.toString(16)} is not ${align}-byte aligned`;
    if (addr + BigInt(len) > U64_LIMIT) return `queue ${q.index}: ${name} wraps the address space`;
    if (options.isValidRange && !options.isValidRange(addr, len)) {
      return `queue ${q.index}: ${name} [0x${addr.toString(16)}, +${len}) is outside guest memory`;
    }
  }
  return undefined;
}
