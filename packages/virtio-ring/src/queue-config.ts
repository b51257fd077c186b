import { type QueueConfig, queueSizeError } from '@rxvmm/virtio';
import { VirtqueueError } from './errors.js';

export type { QueueConfig };
import type { GuestMemory, HostRegion } from '@rxvmm/guest-memory';

/** A ring area resolved to its region and host byte offset in the backing buffer. */
export interface RingArea {
  region: HostRegion;
  /** Byte offset in the region's views (`region.u16` index = host / 2). */
  host: number;
}

/** Resolves and checks one ring area: guest alignment, inside one region, host alignment for Atomics. */
export function ringArea(
  mem: GuestMemory,
  addr: bigint,
  bytes: number,
  align: number,
  what: string,
): RingArea {
  if (typeof addr !== 'bigint' || addr < 0n || addr >= 1n << 64n) {
    throw new VirtqueueError(
      'EFAULT',
      'ring-out-of-memory',
      `${what} address ${String(addr)} is not a guest address`,
    );
  }
  if (addr % BigInt(align) !== 0n) {
    throw new VirtqueueError(
      'EINVAL',
      'ring-misaligned',
      `${what} at 0x${addr.toString(16)} is not ${align}-byte aligned`,
    );
  }
  if (!mem.isValidRange(addr, bytes)) {
    throw new VirtqueueError(
      'EFAULT',
      'ring-out-of-memory',
      `${what} [0x${addr.toString(16)}, +${bytes}) is outside guest memory`,
    );
  }
  const a = Number(addr);
  const ri = mem.regionOf(a, bytes);
  if (ri < 0) {
    throw new VirtqueueError(
      'EFAULT',
      'ring-out-of-memory',
      `${what} at 0x${addr.toString(16)} spans two memory regions`,
    );
  }
  const region = mem.regions[ri]!;
  const host = region.hostOffset + (a - region.start);
  if (host % Math.min(align, 4) !== 0) {
    // Guest-aligned but the host backing is not: typed arrays and Atomics could not address it.
    throw new VirtqueueError('EINVAL', 'ring-misaligned', `${what} is misaligned in its host buffer`);
  }
  return { region, host };
}

/** The spec's queue-size rule (`@rxvmm/virtio`) as a ring error. */
export function checkQueueSize(size: number, maxSize: number | undefined, packed: boolean): void {
  const why = queueSizeError(size, packed, maxSize);
  if (why) throw new VirtqueueError('EINVAL', 'bad-queue-size', why);
}

/** Message for a descriptor whose buffer is not in guest memory, telling a 2^64 wrap apart. */
export function describeBadBuffer(lo: number, hi: number, len: number): string {
  const addr = (BigInt(hi) << 32n) | BigInt(lo);
  const wraps = addr + BigInt(len) > 1n << 64n;
  return `descriptor buffer [0x${addr.toString(16)}, +${len}) ${wraps ? 'wraps past 2^64' : 'is outside guest memory'}`;
}
