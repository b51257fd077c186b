import type { GuestMemory } from '@rxvmm/guest-memory';
import { PackedQueue } from './packed-queue.js';
import type { QueueConfig } from './queue-config.js';
import { SplitQueue } from './split-queue.js';
import type { Virtqueue } from './virtqueue.js';

/**
 * The device side of the queue `config` describes: a {@link PackedQueue} when
 * VIRTIO_F_RING_PACKED was negotiated (`config.packed`), else a {@link SplitQueue}.
 * Throws VirtqueueError for a layout outside guest memory or an illegal size.
 */
export function openQueue(memory: GuestMemory, config: QueueConfig): Virtqueue {
  return config.packed ? new PackedQueue(memory, config) : new SplitQueue(memory, config);
}
