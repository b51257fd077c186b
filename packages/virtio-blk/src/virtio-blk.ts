/**
 * The virtio-blk device model: a `VirtioDevice` (`@rxvmm/virtio`'s contract,
 * hosted by any transport, e.g. `@rxvmm/virtio-mmio`) that serves its request
 * queues from a `BlockBackend` through a `BlockRequestHandler`. Requests run
 * concurrently and complete out of order (5.2: "serviced (probably out of
 * order)"); a used-buffer interrupt is raised only when the ring's notification
 * suppression asks for one.
 */
import { debuglog } from 'node:util';
import { errnoError } from '@rxvmm/errno';
import {
  featureBit,
  hasFeature,
  queueSizeError,
  type VirtioActivation,
  type VirtioDevice,
  VirtioFeature,
} from '@rxvmm/virtio';
import { type DescriptorChain, type GuestMemory, openQueue, type Virtqueue } from '@rxvmm/virtio-ring';
import { Observable } from 'rxjs';
import { type BlockBackend, FileBackend } from './backend.js';
import { type BlkConfig, type BlkGeometry, blkConfig, encodeBlkConfig } from './config.js';
import { BlkFeature, VIRTIO_ID_BLOCK } from './constants.js';
import {
  BlockRequestHandler,
  type BlockRequestResult,
  DEFAULT_SEG_MAX,
  DEFAULT_SIZE_MAX,
} from './request-handler.js';

const log = debuglog('rxvmm:virtio-blk');

export interface VirtioBlkFeatureOptions {
  readOnly?: boolean;
  numQueues?: number;
  geometry?: BlkGeometry;
  /** Offer VIRTIO_F_EVENT_IDX (default true). */
  eventIdx?: boolean;
  /** Offer VIRTIO_F_INDIRECT_DESC (default true). */
  indirect?: boolean;
  /** Offer VIRTIO_F_RING_PACKED (default false: opt in, not every frontend/back-end pairs with it). */
  packed?: boolean;
}

/** The feature bits a virtio-blk device with these options offers (also what a vhost-user back-end reports). */
export function virtioBlkFeatures(options: VirtioBlkFeatureOptions = {}): bigint {
  let f =
    featureBit(VirtioFeature.VERSION_1) |
    featureBit(BlkFeature.SIZE_MAX) |
    featureBit(BlkFeature.SEG_MAX) |
    featureBit(BlkFeature.BLK_SIZE) |
    featureBit(BlkFeature.FLUSH);
  if (options.eventIdx ?? true) f |= featureBit(VirtioFeature.EVENT_IDX);
  if (options.indirect ?? true) f |= featureBit(VirtioFeature.INDIRECT_DESC);
  if (options.readOnly) f |= featureBit(BlkFeature.RO);
  if ((options.numQueues ?? 1) > 1) f |= featureBit(BlkFeature.MQ);
  if (options.geometry) f |= featureBit(BlkFeature.GEOMETRY);
  if (options.packed) f |= featureBit(VirtioFeature.RING_PACKED);
  return f;
}

export interface VirtioBlkOptions extends VirtioBlkFeatureOptions {
  backend: BlockBackend;
  /** Guest RAM the queues and buffers live in. */
  memory: GuestMemory;
  /** QueueNumMax of every queue (default 256). */
  queueSize?: number;
  segMax?: number;
  sizeMax?: number;
  /** blk_size: the logical block size the guest should use (default 512; the protocol still counts 512-byte sectors). */
  blkSize?: number;
  /** GET_ID serial number (up to 20 bytes). */
  serial?: string;
}

export interface VirtioBlkOpenOptions extends Omit<VirtioBlkOptions, 'backend'> {
  /** FileBackend I/O mode (default 'async'; see FileBackendOptions.io). */
  io?: 'async' | 'sync';
}

/** Called for every completed request (for statistics, progress, logging). */
export type CompletionListener = (queueIndex: number, result: BlockRequestResult) => void;

interface ActiveQueue {
  index: number;
  queue: Virtqueue;
  inflight: number;
}

export class VirtioBlk implements VirtioDevice {
  readonly deviceType = VIRTIO_ID_BLOCK;
  readonly features: bigint;
  readonly queueMaxSizes: readonly number[];
  readonly handler: BlockRequestHandler;
  readonly memory: GuestMemory;
  readonly #config: BlkConfig;
  readonly #configBytes: Uint8Array;
  #activation: VirtioActivation | undefined;
  #queues: ActiveQueue[] = [];
  #epoch = 0;
  #broken = false;
  readonly #listeners = new Set<CompletionListener>();

  constructor(options: VirtioBlkOptions) {
    const numQueues = options.numQueues ?? 1;
    const queueSize = options.queueSize ?? 256;
    if (!Number.isInteger(numQueues) || numQueues < 1 || numQueues > 0xffff)
      throw errnoError('EINVAL', `numQueues ${numQueues} out of range`);
    // QueueNumMax must be a legal split-ring size (a split driver uses it as is); a request needs
    // at least a header and a status descriptor, so 1 is too small for a block device.
    const sizeError = queueSizeError(queueSize, false);
    if (sizeError) throw errnoError('EINVAL', `queueSize: ${sizeError}`);
    if (queueSize < 2) throw errnoError('EINVAL', 'queueSize 1: a request takes at least 2 descriptors');
    const blkSize = options.blkSize ?? 512;
    if (blkSize < 512 || (blkSize & (blkSize - 1)) !== 0)
      throw errnoError('EINVAL', `blkSize ${blkSize} must be a power of two >= 512`);
    const readOnly = options.readOnly ?? options.backend.readOnly;
    this.handler = new BlockRequestHandler({
      backend: options.backend,
      readOnly,
      segMax: options.segMax ?? Math.min(DEFAULT_SEG_MAX, queueSize - 2),
      sizeMax: options.sizeMax ?? DEFAULT_SIZE_MAX,
      ...(options.serial !== undefined ? { serial: options.serial } : {}),
    });
    this.memory = options.memory;
    this.features = virtioBlkFeatures({ ...options, readOnly });
    this.queueMaxSizes = Array.from({ length: numQueues }, () => queueSize);
    this.#config = blkConfig({
      capacity: this.handler.capacity,
      sizeMax: this.handler.sizeMax,
      segMax: this.handler.segMax,
      blkSize,
      numQueues,
      ...(options.geometry ? { geometry: options.geometry } : {}),
    });
    this.#configBytes = encodeBlkConfig(this.#config);
  }

  /** Opens `path` (never creating it) and builds a device on it. */
  static async open(path: string, options: VirtioBlkOpenOptions): Promise<VirtioBlk> {
    const backend = await FileBackend.open(path, {
      readOnly: options.readOnly ?? false,
      io: options.io ?? 'async',
    });
    try {
      return new VirtioBlk({ ...options, backend });
    } catch (error) {
      await backend.close();
      throw error;
    }
  }

  /** The configuration space as a struct. */
  get config(): Readonly<BlkConfig> {
    return this.#config;
  }
  get stats() {
    return this.handler.stats;
  }
  /** True after a ring error sent the device to NEEDS_RESET (cleared by reset). */
  get broken(): boolean {
    return this.#broken;
  }

  /** Every completed request, as a stream (for progress lines, statistics, logs). */
  readonly completions$: Observable<{ queue: number; result: BlockRequestResult }> = new Observable(
    (subscriber) => this.onCompletion((queue, result) => subscriber.next({ queue, result })),
  );

  /** Listen to completed requests; returns the unsubscribe function. */
  onCompletion(listener: CompletionListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  readConfig(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) data[i] = this.#configBytes[offset + i] ?? 0;
  }

  writeConfig(offset: number, data: Uint8Array): void {
    // Only `writeback` is writable, and only with VIRTIO_BLK_F_CONFIG_WCE, which is not offered.
    log(`ignored config write of ${data.length} byte(s) at ${offset}`);
  }

  activate(activation: VirtioActivation): void {
    const multiqueue = hasFeature(activation.features, BlkFeature.MQ);
    const usable = multiqueue ? activation.queues : activation.queues.slice(0, 1);
    if (!usable[0]?.ready) throw errnoError('EINVAL', 'request queue 0 is not ready');
    const queues: ActiveQueue[] = [];
    for (const q of usable) {
      if (!q.ready) continue;
      // q carries the negotiated ring features (packed, eventIdx, indirect): openQueue picks the format.
      // Throws VirtqueueError for a layout outside guest memory: the transport turns that into NEEDS_RESET.
      queues[q.index] = { index: q.index, queue: openQueue(this.memory, q), inflight: 0 };
    }
    this.#epoch++; // completions of an earlier activation never touch these rings
    this.#queues = queues;
    this.#activation = activation;
    this.#broken = false;
  }

  reset(): Promise<void> {
    this.#epoch++;
    this.#activation = undefined;
    this.#queues = [];
    this.#broken = false;
    // In-flight requests finish their I/O but no longer touch the rings (epoch changed).
    return this.handler.drain();
  }

  queueNotify(queueIndex: number): void {
    const active = this.#queues[queueIndex];
    if (!active || !this.#activation || this.#broken) return;
    this.#process(active);
  }

  /** Flushes and closes the backend. */
  async close(): Promise<void> {
    await this.handler.drain();
    await this.handler.backend.flush().catch(() => undefined);
    await this.handler.backend.close();
  }

  /** Pops every available chain and starts it; re-checks after enabling notifications (no lost kick). */
  #process(active: ActiveQueue): void {
    const { queue } = active;
    // A guest on another thread can republish chains (even heads in flight) as fast as they are
    // popped: after a budget the rest waits for the next turn of the loop, so completions and the
    // VMM's other work are not starved by one endless synchronous pop loop.
    let budget = 4 * queue.size;
    try {
      for (;;) {
        queue.disableNotifications();
        let chain: DescriptorChain | null = queue.pop();
        while (chain) {
          this.#start(active, chain);
          chain = budget-- > 0 ? queue.pop() : null;
        }
        if (budget < 0) {
          const epoch = this.#epoch;
          setImmediate(() => {
            if (epoch === this.#epoch && !this.#broken && this.#queues[active.index] === active)
              this.#process(active);
          });
          return;
        }
        if (!queue.enableNotifications()) break;
      }
    } catch (error) {
      this.#fail(error);
    }
  }

  #start(active: ActiveQueue, chain: DescriptorChain): void {
    const epoch = this.#epoch;
    active.inflight++;
    this.handler.process(this.memory, chain).then(
      (result) => {
        if (epoch !== this.#epoch) return;
        active.inflight--;
        if (result.error) log(`queue ${active.index} head ${chain.head}: ${result.error}`);
        try {
          active.queue.pushUsed(chain.head, result.usedLen);
          if (active.queue.needsNotification()) this.#activation?.signalUsedBuffer(active.index);
        } catch (error) {
          this.#fail(error);
          return;
        }
        for (const listener of this.#listeners) listener(active.index, result);
      },
      (error: unknown) => {
        if (epoch === this.#epoch) this.#fail(error);
      },
    );
  }

  #fail(error: unknown): void {
    if (this.#broken) return;
    this.#broken = true;
    log(`device failed: ${error instanceof Error ? error.message : String(error)}`);
    this.#activation?.needsReset(error);
  }
}
