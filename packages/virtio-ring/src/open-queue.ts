import type { GuestMemory } from '@rxvmm/guest-memory';
import { PackedQueue } from './packed-queue.js';
import type { QueueConfig } from './queue-config.js';
import { bad, type QueueState, record } from './queue-state.js';
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

/**
 * The queue a `Virtqueue.state()` describes, over `memory` (the restored guest
 * RAM): indices, wrap counters, event-index shadows and buffers in flight as
 * they were. A state that is not a queue state (hostile or from another
 * version) is `EINVAL` before anything is built.
 */
export function restoreQueue(memory: GuestMemory, state: QueueState): Virtqueue {
  const kind = record(state, 'queue state').kind;
  if (kind === 'split') return SplitQueue.fromState(memory, state as QueueState & { kind: 'split' });
  if (kind === 'packed') return PackedQueue.fromState(memory, state as QueueState & { kind: 'packed' });
  throw bad(`queue state of kind ${JSON.stringify(kind)}`);
}
