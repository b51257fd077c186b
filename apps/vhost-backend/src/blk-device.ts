/**
 * The vhost-user-blk device: @rxvmm/virtio-blk's `BlockDevice` (a
 * `ChainDevice`) hosted as it is by the @rxvmm/vhost-user back-end, on a disk
 * opened with this program's I/O choice. GET_CONFIG answers virtio_blk_config;
 * each popped chain becomes one file request; a frontend going away (the
 * device's reset) makes every completed write durable.
 */
import { type BlockBackend, BlockDevice, FileBackend, SECTOR_SIZE } from '@rxvmm/virtio-blk';
import { DelayedCompletionBackend } from './delayed-completions.js';
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
  /** Testing: report each transfer done after a pseudo-random 0..N ms, so requests complete out of order. */
  delayCompletionsMs?: number;
  /** Offer VIRTIO_F_RING_PACKED (default true). */
  packed?: boolean;
}

/**
 * Opens the disk and builds the block device the back-end serves. A disk smaller than one sector
 * is refused (EINVAL, with the size it needs).
 */
export async function openBlkDevice(options: BlkDeviceOptions): Promise<BlockDevice> {
  const numQueues = options.numQueues ?? 1;
  if (!Number.isInteger(numQueues) || numQueues < 1 || numQueues > 64)
    throw new RangeError(`num-queues ${numQueues} must be 1..64`);
  const readOnly = options.readOnly ?? false;
  const file: BlockBackend =
    (options.io ?? 'sync') === 'sync'
      ? SyncFileBackend.open(options.path, { readOnly })
      : await FileBackend.open(options.path, { readOnly });
  const backend =
    options.delayCompletionsMs === undefined
      ? file
      : new DelayedCompletionBackend(file, options.delayCompletionsMs);
  // Capacity is counted in 512-byte sectors: a smaller image would be a disk of no sectors at all.
  if (backend.size < SECTOR_SIZE) {
    await backend.close();
    throw Object.assign(
      new Error(
        `it holds ${backend.size} bytes, but a virtio-blk disk needs at least ${SECTOR_SIZE} (one sector): ` +
          `grow it (truncate -s 64M ${options.path})`,
      ),
      { code: 'EINVAL' },
    );
  }
  try {
    return new BlockDevice({
      backend,
      readOnly,
      numQueues,
      queueSize: options.maxQueueSize ?? 1024,
      serial: options.serial ?? 'rxvmm-vhost-blk',
      packed: options.packed ?? true, // the vhost-user back-end serves split and packed rings
    });
  } catch (error) {
    await backend.close();
    throw error;
  }
}
