/**
 * What a device plugs into the back-end. The back-end owns the protocol, the
 * memory table and the rings; the device only describes itself and turns one
 * descriptor chain into a used length (synchronously or with a Promise).
 */
import type { GuestMemory } from '@rxvmm/guest-memory';
import type { DescriptorChain } from '@rxvmm/virtio-ring';

export interface VhostUserDevice {
  /** Virtio feature bits the device offers (VHOST_USER_F_PROTOCOL_FEATURES is added by the back-end). */
  readonly features: bigint;
  /** Number of virtqueues (GET_QUEUE_NUM); queue indices beyond it are refused. */
  readonly numQueues: number;
  /**
   * Largest ring size accepted by SET_VRING_NUM (≤ 32768); a size must also pass
   * the split-ring rule (`queueSizeError` of `@rxvmm/virtio`).
   */
  readonly maxQueueSize: number;
  /** Device config space (virtio_blk_config for a block device), read by GET_CONFIG. */
  readConfig(): Uint8Array;
  /** SET_CONFIG: a frontend write into config space. Throw an ErrnoError to refuse it. */
  writeConfig?(offset: number, data: Uint8Array): void;
  /** Called once when the frontend acknowledges features (SET_FEATURES). */
  setFeatures?(acked: bigint): void;
  /**
   * Processes one chain popped from queue `queueIndex`; returns the number of
   * bytes written into the chain's writable part. A thrown (or rejected)
   * VirtqueueError / GuestMemoryError marks the ring broken.
   */
  handleChain(chain: DescriptorChain, memory: GuestMemory, queueIndex: number): number | Promise<number>;
  /** Called when the frontend goes away or resets the device (flush caches etc.). */
  reset?(): void | Promise<void>;
}
