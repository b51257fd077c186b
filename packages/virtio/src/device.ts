/**
 * The contract between a transport and a device model. The transport owns the
 * register file and the status state machine; the device owns its queues'
 * processing and its configuration space. Nothing here is transport-specific:
 * virtio-mmio is one transport of it, a vhost-user back-end hosts the same
 * devices.
 */
import type { QueueConfig } from './queue-layout.js';

/**
 * One queue as the driver configured it, handed to the device on activation:
 * a ring's {@link QueueConfig} (with the negotiated ring features filled in,
 * so a device builds its queue from it as it is) plus its index and readiness.
 */
export interface ActivatedQueue extends QueueConfig {
  /** Queue index (QueueSel value). */
  index: number;
  /** QueueNumMax the device offered. */
  maxSize: number;
  /** VIRTIO_F_RING_PACKED negotiated. */
  packed: boolean;
  /** VIRTIO_F_EVENT_IDX negotiated. */
  eventIdx: boolean;
  /** VIRTIO_F_INDIRECT_DESC negotiated. */
  indirect: boolean;
  /** QueueReady as the driver left it. Only ready queues may be touched. */
  ready: boolean;
}

/** What a device receives at DRIVER_OK, and what a VMM can hand to another thread/process. */
export interface VirtioActivationInfo {
  /** Negotiated features (the driver's accepted subset of the device's). */
  features: bigint;
  /** Every queue the device exposes, in index order (not-ready ones included, `ready: false`). */
  queues: readonly ActivatedQueue[];
}

/** Callbacks a device uses to talk back to its transport while active. */
export interface VirtioActivation extends VirtioActivationInfo {
  /** Raise a used-buffer interrupt (call when `needsNotification()` says so). */
  signalUsedBuffer(queueIndex: number): void;
  /** The configuration space changed: bumps ConfigGeneration, raises a config interrupt. */
  signalConfigChange(): void;
  /**
   * The device met an error it cannot recover from (for example a VirtqueueError
   * on a broken ring): the transport sets DEVICE_NEEDS_RESET and raises a
   * configuration change interrupt (section 2.1.2). The device should stop
   * touching its queues until reset.
   */
  needsReset(reason: unknown): void;
}

/** A shared memory region (SHMSel/SHMLen/SHMBase). */
export interface SharedMemoryRegion {
  base: bigint;
  length: bigint;
}

/** A virtio device model driven by a transport. */
export interface VirtioDevice {
  /** Virtio device ID (section 5), e.g. 2 for block. */
  readonly deviceType: number;
  /** Feature bits the device offers. Must include VIRTIO_F_VERSION_1 for a modern transport. */
  readonly features: bigint;
  /** QueueNumMax of each queue; the array length is the number of queues. */
  readonly queueMaxSizes: readonly number[];
  /** Optional VendorID (defaults to 0). */
  readonly vendorId?: number;
  /** Optional shared memory regions, by SHMSel id. */
  readonly sharedMemoryRegions?: readonly SharedMemoryRegion[];
  /** Fill `data` from the configuration space at `offset` (bytes past its end read as 0). */
  readConfig(offset: number, data: Uint8Array): void;
  /** A driver write of `data` at `offset` into the configuration space. */
  writeConfig(offset: number, data: Uint8Array): void;
  /** Device-specific feature checks at FEATURES_OK (the transport already checked the subset rule). */
  validateFeatures?(features: bigint): boolean;
  /**
   * Start serving: called once on the DRIVER_OK transition after the transport
   * validated the queue layout. A throw or rejection puts the device in NEEDS_RESET.
   */
  activate(activation: VirtioActivation): void | Promise<void>;
  /** The driver wrote 0 to Status: forget everything, stop touching guest memory. */
  reset(): void | Promise<void>;
  /** The driver wrote QueueNotify (or an ioeventfd for it fired): queue `queueIndex` has work. */
  queueNotify(queueIndex: number): void;
}
