/**
 * Checks a driver's queue set-up before the device may touch it (virtio 1.2
 * sections 2.7 and 2.8: sizes and alignments of the three areas). A transport
 * runs this at DRIVER_OK; a failing queue sends the device to NEEDS_RESET.
 */
import type { ActivatedQueue } from './device.js';

const U64_LIMIT = 1n << 64n;

/** Is [addr, addr+len) guest memory the device may access? */
export type GuestRangeCheck = (addr: bigint, len: number) => boolean;

export interface QueueLayoutOptions {
  /** VIRTIO_F_RING_PACKED negotiated: any size, different areas. */
  packed: boolean;
  /** When given, every area must lie in guest memory according to it. */
  isValidRange?: GuestRangeCheck | undefined;
}

/** Byte sizes of the three areas of a queue of `size` entries. */
export function queueAreaSizes(
  size: number,
  packed: boolean,
): { desc: number; driver: number; device: number } {
  if (packed) return { desc: 16 * size, driver: 4, device: 4 };
  // split: flags + idx + ring[size] + used_event, and flags + idx + used[size] + avail_event
  return { desc: 16 * size, driver: 6 + 2 * size, device: 6 + 8 * size };
}

/** Returns why the queue cannot be used, or undefined when it is well formed. */
export function queueLayoutError(q: ActivatedQueue, options: QueueLayoutOptions): string | undefined {
  const { size } = q;
  if (!Number.isInteger(size) || size === 0) return `queue ${q.index}: size is 0`;
  if (size > q.maxSize) return `queue ${q.index}: size ${size} exceeds QueueNumMax ${q.maxSize}`;
  if (!options.packed && (size & (size - 1)) !== 0)
    return `queue ${q.index}: split queue size ${size} is not a power of 2`;
  if (options.packed && size > 0x8000) return `queue ${q.index}: packed queue size ${size} exceeds 32768`;
  const sizes = queueAreaSizes(size, options.packed);
  // Alignments: split desc 16, avail 2, used 4; packed: desc 16, event structures 4.
  const areas: [string, bigint, number, bigint][] = [
    ['descriptor area', q.descTable, sizes.desc, 16n],
    ['driver area', q.driverArea, sizes.driver, options.packed ? 4n : 2n],
    ['device area', q.deviceArea, sizes.device, 4n],
  ];
  for (const [name, addr, len, align] of areas) {
    if (addr % align !== 0n)
      return `queue ${q.index}: ${name} 0x${addr.toString(16)} is not ${align}-byte aligned`;
    if (addr + BigInt(len) > U64_LIMIT) return `queue ${q.index}: ${name} wraps the address space`;
    if (options.isValidRange && !options.isValidRange(addr, len)) {
      return `queue ${q.index}: ${name} [0x${addr.toString(16)}, +${len}) is outside guest memory`;
    }
  }
  return undefined;
}
