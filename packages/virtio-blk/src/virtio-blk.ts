/**
 * The virtio-blk device (virtio 1.2 section 5.2), as the library's devices
 * are: a request handler plus the serving loop.
 *
 * - `BlockDevice` is the device as a `ChainDevice`: what it offers (features,
 *   configuration space, queues) and what one chain does (`BlockRequestHandler`
 *   parses it into a typed request and runs it on a `BlockBackend`). A
 *   vhost-user back-end hosts it as it is.
 * - `VirtioBlk` hosts a `BlockDevice` in the VMM behind any transport
 *   (`@rxvmm/virtio-mmio`): the `DeviceServer` of `@rxvmm/virtio-ring` runs one
 *   serving loop per queue. Requests run concurrently and complete out of order
 *   (5.2: "serviced (probably out of order)"); a used-buffer interrupt is
 *   raised only when the ring's notification suppression asks for one.
 */
import { isDeepStrictEqual } from 'node:util';
import { debug, errnoError } from '@rxvmm/errno';
import { featureBit, queueSizeError, type VirtioActivationInfo, VirtioFeature } from '@rxvmm/virtio';
import {
  type ChainBuffer,
  type ChainDevice,
  type DescriptorChain,
  DeviceServer,
  type GuestMemory,
} from '@rxvmm/virtio-ring';
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

const log = debug('rxvmm:virtio-blk');

/** What decides the features a block device offers (`virtioBlkFeatures`). */
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

/** Options of `new BlockDevice(options)`. */
export interface BlockDeviceOptions extends VirtioBlkFeatureOptions {
  backend: BlockBackend;
  /** QueueNumMax of every queue (default 256). */
  queueSize?: number;
  segMax?: number;
  sizeMax?: number;
  /** blk_size: the logical block size the guest should use (default 512; the protocol still counts 512-byte sectors). */
  blkSize?: number;
  /** GET_ID serial number (up to 20 bytes). */
  serial?: string;
}

/** Options of `new VirtioBlk(options)`: a `BlockDevice`'s, plus the guest memory its queues are in. */
export interface VirtioBlkOptions extends BlockDeviceOptions {
  /** Guest RAM the queues and buffers live in. */
  memory: GuestMemory;
}

/** Options of `BlockDevice.open(path, options)`: a `BlockDevice`'s without the backend, plus the file's `io` mode. */
export interface BlockDeviceOpenOptions extends Omit<BlockDeviceOptions, 'backend'> {
  /** FileBackend I/O mode (default 'async'; see FileBackendOptions.io). */
  io?: 'async' | 'sync';
}

/** Options of `VirtioBlk.open(path, options)`. */
export interface VirtioBlkOpenOptions extends BlockDeviceOpenOptions {
  /** Guest RAM the queues and buffers live in. */
  memory: GuestMemory;
}

/** The `version` of the BlockDevice state this code writes and reads. */
export const BLOCK_DEVICE_STATE_VERSION = 1;

/** `BlockDevice.state()`: what the device offers, as plain data (capacity and features as decimal strings). */
export interface BlockDeviceState {
  version: typeof BLOCK_DEVICE_STATE_VERSION;
  features: string;
  queueMaxSizes: number[];
  readOnly: boolean;
  config: Omit<BlkConfig, 'capacity'> & { capacity: string };
}

/** Called for every completed request (for statistics, progress, logging). */
export type CompletionListener = (queueIndex: number, result: BlockRequestResult) => void;

/** A virtio-blk device as a request handler: hosted by `VirtioBlk` in a VMM, or by a vhost-user back-end. */
export class BlockDevice implements ChainDevice {
  readonly deviceType = VIRTIO_ID_BLOCK;
  readonly features: bigint;
  readonly queueMaxSizes: readonly number[];
  readonly handler: BlockRequestHandler;
  readonly config: Readonly<BlkConfig>;
  readonly #configBytes: Uint8Array;
  readonly #listeners = new Set<CompletionListener>();
  /**
   * With a synchronous backend (`SyncBlockBackend`), the serving loop's fast path: a request
   * popped into its reused `ChainBuffer`, served at once (`BlockRequestHandler.processBuffer`).
   * Undefined with an asynchronous backend, so the hosts call `handleChain`.
   */
  readonly handleChainBuffer:
    | ((chain: ChainBuffer, memory: GuestMemory, queueIndex: number) => number)
    | undefined;

  constructor(options: BlockDeviceOptions) {
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
    this.features = virtioBlkFeatures({ ...options, readOnly });
    this.queueMaxSizes = Array.from({ length: numQueues }, () => queueSize);
    this.config = blkConfig({
      capacity: this.handler.capacity,
      sizeMax: this.handler.sizeMax,
      segMax: this.handler.segMax,
      blkSize,
      numQueues,
      ...(options.geometry ? { geometry: options.geometry } : {}),
    });
    this.#configBytes = encodeBlkConfig(this.config);
    const handler = this.handler;
    this.handleChainBuffer = handler.sync
      ? (chain, memory, queueIndex) =>
          this.#completed(queueIndex, chain, handler.processBuffer(memory, chain))
      : undefined;
  }

  /** Opens `path` (never creating it) and builds a device on it. */
  static async open(path: string, options: BlockDeviceOpenOptions = {}): Promise<BlockDevice> {
    const backend = await FileBackend.open(path, {
      readOnly: options.readOnly ?? false,
      io: options.io ?? 'async',
    });
    try {
      return new BlockDevice({ ...options, backend });
    } catch (error) {
      await backend.close();
      throw error;
    }
  }

  get configSize(): number {
    return this.#configBytes.length;
  }

  get stats() {
    return this.handler.stats;
  }

  /**
   * Every completed request, as a stream (for progress lines, statistics, logs): emitted when its
   * I/O is done; the serving loop publishes its used entry later in the same turn.
   */
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

  checkActivation(info: VirtioActivationInfo): void {
    if (!info.queues[0]?.ready) throw errnoError('EINVAL', 'request queue 0 is not ready');
  }

  /**
   * Serves one request: its used length, at once (a number) when the backend's transfers are
   * synchronous (`SyncBlockBackend`: no promise per request), else as a promise.
   */
  handleChain(chain: DescriptorChain, memory: GuestMemory, queueIndex: number): number | Promise<number> {
    if (this.handler.sync) return this.#completed(queueIndex, chain, this.handler.processSync(memory, chain));
    return this.handler.process(memory, chain).then((result) => this.#completed(queueIndex, chain, result));
  }

  #completed(queueIndex: number, chain: DescriptorChain | ChainBuffer, result: BlockRequestResult): number {
    if (result.error) log(`queue ${queueIndex} head ${chain.head}: ${result.error}`);
    if (this.#listeners.size > 0) for (const listener of this.#listeners) listener(queueIndex, result);
    return result.usedLen;
  }

  /**
   * The driver reset the device (or a vhost-user frontend left): waits for requests in flight
   * (their I/O finishes; the rings were already abandoned) and makes every completed write durable.
   */
  async reset(): Promise<void> {
    await this.handler.drain();
    if (!this.handler.backend.readOnly) await this.handler.backend.flush();
  }

  /**
   * The device's own state as plain data (its rings are the host's): what it offers (features,
   * queues, the configuration space, capacity as a decimal string). It keeps nothing else: the
   * disk's bytes are the backend's. `EBUSY` with requests in flight: the VMM drains first (a
   * `DeviceServer` does in `pause()`).
   */
  state(): BlockDeviceState {
    const inflight = this.handler.inflight;
    if (inflight > 0)
      throw errnoError(
        'EBUSY',
        `${inflight} request(s) in flight: pause (drain) the device before saving it`,
      );
    return this.#description();
  }

  /**
   * Checks a saved state against this device: the snapshot resumes a guest that already read
   * this configuration, so a disk of another size or a device with other options is `EINVAL`.
   */
  restoreState(state: unknown): void {
    const s = state as Partial<BlockDeviceState> | null;
    if (typeof s !== 'object' || s === null || s.version !== BLOCK_DEVICE_STATE_VERSION)
      throw errnoError('EINVAL', `bad virtio-blk state: not a version ${BLOCK_DEVICE_STATE_VERSION} state`);
    if (!isDeepStrictEqual(s, this.#description()))
      throw errnoError(
        'EINVAL',
        'virtio-blk state: saved with another disk size, configuration or features than this device has',
      );
  }

  #description(): BlockDeviceState {
    const { capacity, ...rest } = this.config;
    return {
      version: BLOCK_DEVICE_STATE_VERSION,
      features: this.features.toString(),
      queueMaxSizes: [...this.queueMaxSizes],
      readOnly: this.handler.readOnly,
      config: { ...structuredClone(rest), capacity: capacity.toString() },
    };
  }

  /** Waits for requests in flight, flushes and closes the backend. */
  async close(): Promise<void> {
    await this.handler.drain();
    await this.handler.backend.flush().catch(() => undefined);
    await this.handler.backend.close();
  }
}

/** A virtio-blk device in the VMM, behind any transport: a `BlockDevice` served by a `DeviceServer`. */
export class VirtioBlk extends DeviceServer {
  declare readonly device: BlockDevice;

  constructor(options: VirtioBlkOptions | { device: BlockDevice; memory: GuestMemory }) {
    super('device' in options ? options.device : new BlockDevice(options), options.memory);
  }

  /** Opens `path` (never creating it) and builds a device on it. */
  static async open(path: string, options: VirtioBlkOpenOptions): Promise<VirtioBlk> {
    const device = await BlockDevice.open(path, options);
    return new VirtioBlk({ device, memory: options.memory });
  }

  get handler(): BlockRequestHandler {
    return this.device.handler;
  }
  /** The configuration space as a struct. */
  get config(): Readonly<BlkConfig> {
    return this.device.config;
  }
  get stats() {
    return this.device.stats;
  }
  /** True after a ring or device error sent the device to NEEDS_RESET (cleared by reset). */
  get broken(): boolean {
    return this.failure !== undefined;
  }
  get completions$(): Observable<{ queue: number; result: BlockRequestResult }> {
    return this.device.completions$;
  }
  /** Listen to completed requests; returns the unsubscribe function. */
  onCompletion(listener: CompletionListener): () => void {
    return this.device.onCompletion(listener);
  }
  /** Flushes and closes the backend. */
  close(): Promise<void> {
    return this.device.close();
  }
}
