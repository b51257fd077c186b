/**
 * Hosts a {@link ChainDevice} in the VMM's process behind a transport: the
 * `VirtioDevice` contract of `@rxvmm/virtio` on one side, one
 * {@link serveQueue} loop per ready queue on the other. Kicks come from the
 * transport (`queueNotify`, called on a QueueNotify exit or from an
 * ioeventfd's `signals$`); used-buffer interrupts go to
 * `activation.signalUsedBuffer`; any ring or device error sends the device to
 * DEVICE_NEEDS_RESET through `activation.needsReset`, and the other devices
 * keep running.
 *
 * Snapshots: `pause()` completes each queue's kick stream and waits for its
 * loop (every chain in flight completes and is published), `state()` is then
 * plain data, and `restoreState()` on a fresh server makes the transport's
 * next activation resume the queues where they were instead of at index 0.
 */

import { errnoError } from '@rxvmm/errno';
import type { GuestMemory } from '@rxvmm/guest-memory';
import type { ActivatedQueue, VirtioActivation, VirtioDevice } from '@rxvmm/virtio';
import { Subject, type Subscription } from 'rxjs';
import type { ChainBuffer } from './chain.js';
import type { ChainDevice } from './chain-device.js';
import { openQueue, restoreQueue } from './open-queue.js';
import { type QueueConfigState, type QueueState, queueConfigState, record } from './queue-state.js';
import { serveQueue } from './serve-queue.js';
import type { Virtqueue } from './virtqueue.js';

interface ServedQueue {
  kicks: Subject<void>;
  subscription: Subscription;
  /** Settles when the loop ends (completed after a pause, or failed). */
  done: Promise<void>;
}

/** The `version` of the DeviceServer state this code writes and reads. */
export const DEVICE_SERVER_STATE_VERSION = 1;

/** A {@link DeviceServer} as plain data (`state()`), for snapshots. */
export interface DeviceServerState {
  version: typeof DEVICE_SERVER_STATE_VERSION;
  deviceType: number;
  /** The negotiated features (decimal string) while activated, else null. */
  features: string | null;
  /** Per queue index: its ring state while activated and ready, else null. */
  queues: (QueueState | null)[];
  /** Why the device went to NEEDS_RESET (its message), or null. */
  failure: string | null;
  /** The hosted ChainDevice's own state (`ChainDevice.state()`), or null when it keeps none. */
  device: unknown;
}

/** Hosts a `ChainDevice` in the VMM behind a transport (see the file comment): the `VirtioDevice` contract on one side, one `serveQueue` loop per ready queue on the other. */
export class DeviceServer implements VirtioDevice {
  readonly deviceType: number;
  readonly features: bigint;
  readonly queueMaxSizes: readonly number[];
  /** The open rings of the current activation, by queue index. */
  #queues: (Virtqueue | undefined)[] = [];
  #served: (ServedQueue | undefined)[] = [];
  #activation: VirtioActivation | undefined;
  #features: bigint | undefined;
  #failure: unknown = undefined;
  #paused = false;
  /** Queues kicked while paused (served again on resume). */
  #kickedWhilePaused = new Set<number>();
  /** Set by restoreState(): what the next activation resumes. */
  #restored: { features: bigint; queues: (Virtqueue | undefined)[] } | undefined;

  constructor(
    readonly device: ChainDevice,
    readonly memory: GuestMemory,
  ) {
    this.deviceType = device.deviceType;
    this.features = device.features;
    this.queueMaxSizes = device.queueMaxSizes;
  }

  /** The error that sent the device to NEEDS_RESET since the last activation, if any. */
  get failure(): unknown {
    return this.#failure;
  }

  /** True between `pause()` and `resume()` (or the next activation or reset). */
  get paused(): boolean {
    return this.#paused;
  }

  readConfig(offset: number, data: Uint8Array): void {
    this.device.readConfig(offset, data);
  }

  writeConfig(offset: number, data: Uint8Array): void {
    this.device.writeConfig?.(offset, data);
  }

  validateFeatures(features: bigint): boolean {
    return this.device.validateFeatures?.(features) ?? true;
  }

  activate(activation: VirtioActivation): void {
    this.#stop();
    this.#failure = undefined;
    this.#paused = false;
    this.#kickedWhilePaused.clear();
    const restored = this.#restored;
    this.#restored = undefined;
    this.device.checkActivation?.(activation);
    this.device.setFeatures?.(activation.features);
    // Build every queue before serving any: a bad layout (VirtqueueError) fails activation whole.
    const queues = restored
      ? resumedQueues(restored, activation)
      : activation.queues.map((q) => (q.ready ? openQueue(this.memory, q) : undefined));
    this.#activation = activation;
    this.#features = activation.features;
    this.#queues = queues;
    this.#serve();
    // A restored device may have had a doorbell rung and not served yet: look at every ring once.
    if (restored) for (let i = 0; i < queues.length; i++) this.queueNotify(i);
  }

  queueNotify(queueIndex: number): void {
    if (this.#paused) {
      if (this.#queues[queueIndex]) this.#kickedWhilePaused.add(queueIndex);
      return;
    }
    this.#served[queueIndex]?.kicks.next();
  }

  async reset(): Promise<void> {
    this.#stop();
    this.#queues = [];
    this.#activation = undefined;
    this.#features = undefined;
    this.#failure = undefined;
    this.#paused = false;
    this.#kickedWhilePaused.clear();
    this.#restored = undefined;
    await this.device.reset?.();
  }

  /**
   * Stops serving without losing anything: each queue's kick stream completes,
   * so its loop pops nothing more, waits for the chains in flight and publishes
   * their used entries; resolves when every loop has ended. Kicks that arrive
   * meanwhile are remembered for `resume()`. Then `state()` may be taken.
   */
  async pause(): Promise<void> {
    if (this.#paused) return;
    this.#paused = true;
    const served = this.#served;
    for (const s of served) s?.kicks.complete();
    await Promise.all(served.map((s) => s?.done));
    this.#served = [];
  }

  /** Serves the queues again after `pause()`, kicking the ones kicked meanwhile. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (this.#failure !== undefined || !this.#activation) return;
    this.#serve();
    const kicked = [...this.#kickedWhilePaused];
    this.#kickedWhilePaused.clear();
    for (const i of kicked) this.queueNotify(i);
  }

  /**
   * The server as plain data: negotiated features, each ring's state, the
   * failure and the device's own state. Needs the queues paused (`pause()`):
   * while they are served, chains may be in flight and this is `EBUSY`.
   */
  state(): DeviceServerState {
    if (this.#served.some((s) => s !== undefined))
      throw errnoError('EBUSY', 'the device is serving its queues: pause() it before taking its state');
    return {
      version: DEVICE_SERVER_STATE_VERSION,
      deviceType: this.deviceType,
      features: this.#features === undefined ? null : this.#features.toString(),
      queues: this.queueMaxSizes.map((_, i) => this.#queues[i]?.state() ?? null),
      failure: this.#failure === undefined ? null : describe(this.#failure),
      device: this.device.state?.() ?? null,
    };
  }

  /**
   * Loads `state` into a server that is not active (a fresh one, or after
   * reset): the device's own state now, the rings at the next `activate()`,
   * which the restored transport makes with the same features and queue
   * layout (anything else fails that activation: `EINVAL`). Each ring is then
   * kicked once, so a doorbell rung before the snapshot is served. Everything
   * is checked before anything changes: a state this server could not have
   * written is `EINVAL`, an active server `EBUSY`.
   */
  restoreState(state: DeviceServerState): void {
    if (this.#activation) throw errnoError('EBUSY', 'restoreState on an active device: reset it first');
    const s = record(state, 'device server state');
    if (s.version !== DEVICE_SERVER_STATE_VERSION)
      throw stateError(`version ${String(s.version)} (this code reads ${DEVICE_SERVER_STATE_VERSION})`);
    if (s.deviceType !== this.deviceType)
      throw stateError(`device type ${String(s.deviceType)}, this device is ${this.deviceType}`);
    if (!Array.isArray(s.queues) || s.queues.length !== this.queueMaxSizes.length)
      throw stateError(`queues must list this device's ${this.queueMaxSizes.length} queue(s)`);
    if (s.failure !== null && typeof s.failure !== 'string')
      throw stateError('failure must be a string or null');
    let features: bigint | undefined;
    if (s.features !== null) {
      if (typeof s.features !== 'string' || !/^(0|[1-9][0-9]{0,19})$/.test(s.features))
        throw stateError('features must be a decimal string or null');
      features = BigInt(s.features);
      if ((features & ~this.features) !== 0n)
        throw stateError(`negotiated features 0x${features.toString(16)} were never offered by this device`);
    }
    const queues = (s.queues as unknown[]).map((q) =>
      q === null ? undefined : restoreQueue(this.memory, q as QueueState),
    );
    if (features === undefined && queues.some((q) => q !== undefined))
      throw stateError('queue states without negotiated features');
    if (s.device !== null) {
      if (!this.device.restoreState) throw stateError('device state for a device that keeps none');
      this.device.restoreState(s.device);
    }
    this.#restored = features === undefined ? undefined : { features, queues };
    this.#failure = s.failure === null ? undefined : new Error(s.failure);
  }

  /** One serving loop per open queue, wired to the current activation. */
  #serve(): void {
    const activation = this.#activation!;
    this.#served = this.#queues.map((queue, index) => {
      if (!queue) return undefined;
      const kicks = new Subject<void>();
      const device = this.device;
      const loop = serveQueue(queue, (chain) => device.handleChain(chain, this.memory, index), {
        ...device.serveOptions?.(index),
        ...(device.handleChainBuffer
          ? { handleBuffer: (chain: ChainBuffer) => device.handleChainBuffer!(chain, this.memory, index) }
          : {}),
      });
      let settle!: () => void;
      const done = new Promise<void>((resolve) => {
        settle = resolve;
      });
      const subscription = kicks.pipe(loop).subscribe({
        next: () => activation.signalUsedBuffer(index),
        error: (error: unknown) => {
          settle();
          if (this.#failure !== undefined) return;
          this.#failure = error;
          this.#stop(); // every queue stops touching guest memory until reset
          activation.needsReset(error);
        },
        complete: settle,
      });
      subscription.add(settle); // an abandoned loop (reset) ends too
      return { kicks, subscription, done };
    });
  }

  /** Abandons every queue: requests in flight finish but never touch the rings. */
  #stop(): void {
    const served = this.#served;
    this.#served = [];
    for (const s of served) s?.subscription.unsubscribe();
  }
}

/** The restored rings, checked against the activation the restored transport made. */
function resumedQueues(
  restored: { features: bigint; queues: (Virtqueue | undefined)[] },
  activation: VirtioActivation,
): (Virtqueue | undefined)[] {
  if (activation.features !== restored.features)
    throw stateError(
      `activation features 0x${activation.features.toString(16)} differ from the saved 0x${restored.features.toString(16)}`,
    );
  return activation.queues.map((q, i) => {
    const queue = restored.queues[i];
    if (!q.ready) {
      if (queue) throw stateError(`queue ${i} was saved ready and is activated not ready`);
      return undefined;
    }
    if (!queue) throw stateError(`queue ${i} is activated ready and was saved not ready`);
    const saved = queue.state().config;
    if (!sameLayout(saved, q)) throw stateError(`queue ${i}'s layout differs from the saved one`);
    return queue;
  });
}

function sameLayout(saved: QueueConfigState, q: ActivatedQueue): boolean {
  const now = queueConfigState(q);
  return (
    saved.size === now.size &&
    saved.descTable === now.descTable &&
    saved.driverArea === now.driverArea &&
    saved.deviceArea === now.deviceArea &&
    saved.packed === now.packed &&
    saved.eventIdx === now.eventIdx &&
    saved.indirect === now.indirect
  );
}

function stateError(why: string): Error {
  return errnoError('EINVAL', `bad device server state: ${why}`);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
