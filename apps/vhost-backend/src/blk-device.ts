/**
 * The vhost-user-blk device: @rxvmm/virtio-blk's `BlockDevice` (a
 * `ChainDevice`) hosted as it is by the @rxvmm/vhost-user back-end, on a disk
 * opened with this program's I/O choice. GET_CONFIG answers virtio_blk_config;
 * each popped chain becomes one file request; a frontend going away (the
 * device's reset) makes every completed write durable.
 */
import {
  BlockDevice,
  type BlockBackend,
  FileBackend,
} from '@rxvmm/virtio-blk';
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

/** Opens the disk and builds the block device the back-end serves. */
export async function openBlkDevice(options: BlkDeviceOptions): Promise<BlockDevice> {
  const numQueues = options.numQueues ?? 1;
  if (!Number.isInteger(numQueues) || numQueues < 1 || numQueues > 64)
    throw new RangeError(`num-queues ${numQueues} must be 1..64`);
  const readOnly = options.readOnly ?? false;
  const backend: BlockBackend =
    (options.io ?? 'sync') === 'sync'
      ? SyncFileBackend.open(options.path, { readOnly })
      : await FileBackend.open(options.path, { readOnly });
  try {
    return new BlockDevice({
      backend,
      readOnly,
      numQueues,
      queueSize: options.maxQueueSize ?? 1024,
      serial: options.serial ?? 'rxvmm-vhost-blk',
      packed: false, // the vhost-user back-end builds split rings only
    });
  } catch (error) {
    await backend.close();
    throw error;
  }
}
