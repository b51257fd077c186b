import type { ChainBuffer, DescriptorChain } from './chain.js';
import type { VirtqueueError } from './errors.js';
import type { QueueState } from './queue-state.js';

/** The device side shared by {@link SplitQueue} and {@link PackedQueue}. */
export interface Virtqueue {
  readonly size: number;
  /** The error that broke the queue (device must signal NEEDS_RESET), or null. */
  readonly broken: VirtqueueError | null;
  /** Next available chain as a fresh object, or null when the ring is empty. Throws VirtqueueError. */
  pop(): DescriptorChain | null;
  /** Hot path: refills `chain` in place; false when the ring is empty. Throws VirtqueueError. */
  popInto(chain: ChainBuffer): boolean;
  /** Pops up to `max` chains into one reused ChainBuffer, calling `onChain` for each. Returns the count. */
  drain(onChain: (chain: ChainBuffer) => void, max?: number): number;
  /** Returns a chain to the driver: `head` is the chain's head (split) or buffer id (packed). */
  pushUsed(head: number, len: number): void;
  /** Like pushUsed, but the used index moves only at publishUsed() / needsNotification() (split: one release store per batch). */
  addUsed(head: number, len: number): void;
  /** Publishes what addUsed() wrote. */
  publishUsed(): void;
  /** After a batch of pushUsed/addUsed: publishes, then answers whether the driver wants an interrupt. */
  needsNotification(): boolean;
  /** Ask for kicks again; true when buffers arrived meanwhile (pop again before sleeping). */
  enableNotifications(): boolean;
  /** Ask the driver not to kick (while the device is polling anyway). */
  disableNotifications(): void;
  /** Device reset: indices and wrap counters to their initial values, error cleared. */
  reset(): void;
  /** The device-side state as plain data (snapshots); `restoreQueue` rebuilds the queue from it. */
  state(): QueueState;
}
