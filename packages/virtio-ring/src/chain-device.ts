import type { GuestMemory } from '@rxvmm/guest-memory';
import type { VirtioActivationInfo } from '@rxvmm/virtio';
import type { ChainBuffer, DescriptorChain } from './chain.js';
import type { ServeQueueOptions } from './serve-queue.js';

/**
 * A virtio device written as a request handler: what it offers (type,
 * features, queues, configuration space) and what it does with one descriptor
 * chain. The library owns the rings, the loop and the notifications, so the
 * same device runs in a VMM behind any transport ({@link DeviceServer} over
 * virtio-mmio) and behind a vhost-user back-end (`@rxvmm/vhost-user`), as
 * rust-vmm's vhost-user-backend does with its backend trait.
 */
export interface ChainDevice {
  /** Virtio device ID (section 5), e.g. 2 for block. */
  readonly deviceType: number;
  /** Feature bits offered (include VIRTIO_F_VERSION_1). */
  readonly features: bigint;
  /** Largest size of each queue; the array's length is the number of queues. */
  readonly queueMaxSizes: readonly number[];
  /** Fills `data` from the configuration space at `offset` (bytes past its end read as 0). */
  readConfig(offset: number, data: Uint8Array): void;
  /** Size of the configuration space in bytes. */
  readonly configSize: number;
  /** A driver write into the configuration space; throw an errno error to refuse it. */
  writeConfig?(offset: number, data: Uint8Array): void;
  /** Device-specific checks of the driver's features (the subset rule is already checked). */
  validateFeatures?(features: bigint): boolean;
  /** The features the driver accepted, before the first chain is served. */
  setFeatures?(features: bigint): void;
  /**
   * In-VMM hosting ({@link DeviceServer}): the driver set DRIVER_OK with these
   * features and queues; throw to refuse them (the device goes to NEEDS_RESET).
   * A vhost-user back-end sees queues one message at a time and does not call it.
   */
  checkActivation?(info: VirtioActivationInfo): void;
  /**
   * Serves one chain of queue `queueIndex`: the bytes written into its
   * device-writable buffers, now or later. A throw or rejection (for example a
   * VirtqueueError or GuestMemoryError on hostile input) fails the device.
   */
  handleChain(chain: DescriptorChain, memory: GuestMemory, queueIndex: number): number | PromiseLike<number>;
  /**
   * Optional, for devices whose requests complete on the calling thread: serves one chain at once
   * from the serving loop's reused {@link ChainBuffer} (numeric addresses, no object per segment)
   * and returns the bytes written into its device-writable buffers. When a device has it, the
   * hosts ({@link DeviceServer}, `@rxvmm/vhost-user`) pop into that buffer and call it instead of
   * `handleChain`. The buffer is refilled by the next pop: read it during the call only. Throws
   * as `handleChain` does.
   */
  handleChainBuffer?(chain: ChainBuffer, memory: GuestMemory, queueIndex: number): number;
  /** Per-queue loop limits (concurrency, budget); the loop's defaults otherwise. */
  serveOptions?(queueIndex: number): Pick<ServeQueueOptions, 'concurrency' | 'budget'>;
  /** The driver reset the device (or the frontend left): in-flight requests were abandoned. */
  reset?(): void | Promise<void>;
  /**
   * The device's own state as plain JSON-serialisable data (for snapshots), beside its rings'
   * that the host saves. Throw an errno error (`EBUSY`) when it cannot be taken now, e.g. with
   * requests in flight.
   */
  state?(): unknown;
  /** Loads what {@link ChainDevice.state} returned (untrusted: throw `EINVAL` for anything it could not have). */
  restoreState?(state: unknown): void;
}
