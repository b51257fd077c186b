/**
 * The vhost-user-blk device: @rxvmm/virtio-blk's BlockRequestHandler behind
 * the @rxvmm/vhost-user back-end. GET_CONFIG is answered with the
 * virtio_blk_config from virtio-blk's encoder; each popped chain becomes one
 * asynchronous file request; a frontend going away flushes the disk.
 */

import type { VhostUserDevice } from '@rxvmm/vhost-user';
import { featureBit, VirtioFeature } from '@rxvmm/virtio';
import {
  type BlockBackend,
  BlockRequestHandler,
  type BlockRequestStats,
  blkConfig,
  encodeBlkConfig,
  FileBackend,
  virtioBlkFeatures,
} from '@rxvmm/virtio-blk';
import type { DescriptorChain, GuestMemory } from '@rxvmm/virtio-ring';
import { SyncFileBackend } from './sync-file-backend.js';

export interface BlkDeviceOptions {
  /** Disk image (regular file or block device); never created. */
  path: string;
  readOnly?: boolean;
  /** Virtqueues (default 1). */
  numQueues?: number;
  /** Ring size limit (default 1024; QEMU's vhost-user-blk uses 128). */
  maxQueueSize?: number;
  serial?: string;
  /** 'sync' (default): preadv/pwritev on the loop thread; 'async': fs.promises (libuv threadpool). */
  io?: 'sync' | 'async';
}

export class VhostUserBlkDevice implements VhostUserDevice {
  readonly features: bigint;
  readonly numQueues: number;
  readonly maxQueueSize: number;
  private readonly config: Uint8Array;

  private constructor(
    readonly backend: BlockBackend,
    readonly handler: BlockRequestHandler,
    options: BlkDeviceOptions,
  ) {
    this.numQueues = options.numQueues ?? 1;
    this.maxQueueSize = options.maxQueueSize ?? 1024;
    const readOnly = options.readOnly ?? false;
    // The vhost-user back-end builds split rings only: never offer VIRTIO_F_RING_PACKED.
    this.features =
      virtioBlkFeatures({ readOnly, numQueues: this.numQueues, packed: false }) &
      ~featureBit(VirtioFeature.RING_PACKED);
    this.config = encodeBlkConfig(
      blkConfig({
        capacity: handler.capacity,
        segMax: handler.segMax,
        sizeMax: handler.sizeMax,
        numQueues: this.numQueues,
      }),
    );
  }

  static async open(options: BlkDeviceOptions): Promise<VhostUserBlkDevice> {
    const numQueues = options.numQueues ?? 1;
    if (!Number.isInteger(numQueues) || numQueues < 1 || numQueues > 64)
      throw new RangeError(`num-queues ${numQueues} must be 1..64`);
    const readOnly = options.readOnly ?? false;
    const backend: BlockBackend =
      (options.io ?? 'sync') === 'sync'
        ? SyncFileBackend.open(options.path, { readOnly })
        : await FileBackend.open(options.path, { readOnly });
    const handler = new BlockRequestHandler({
      backend,
      readOnly,
      serial: options.serial ?? 'rxvmm-vhost-blk',
    });
    return new VhostUserBlkDevice(backend, handler, options);
  }

  get stats(): BlockRequestStats {
    return { ...this.handler.stats };
  }

  readConfig(): Uint8Array {
    return this.config;
  }

  handleChain(chain: DescriptorChain, memory: GuestMemory): Promise<number> {
    return this.handler.process(memory, chain).then((r) => r.usedLen);
  }

  /** Frontend gone or device reset: make every completed write durable. */
  async reset(): Promise<void> {
    await this.handler.drain();
    if (!this.backend.readOnly) await this.backend.flush();
  }

  /** Flushes and closes the disk. */
  async close(): Promise<void> {
    await this.reset();
    await this.backend.close();
  }
}
