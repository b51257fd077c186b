/**
 * Hosts a {@link ChainDevice} in the VMM's process behind a transport: the
 * `VirtioDevice` contract of `@rxvmm/virtio` on one side, one
 * {@link serveQueue} loop per ready queue on the other. Kicks come from the
 * transport (`queueNotify`, called on a QueueNotify exit or from an
 * ioeventfd's `signals$`); used-buffer interrupts go to
 * `activation.signalUsedBuffer`; any ring or device error sends the device to
 * DEVICE_NEEDS_RESET through `activation.needsReset`, and the other devices
 * keep running.
 */
import type { GuestMemory } from '@rxvmm/guest-memory';
import type { VirtioActivation, VirtioDevice } from '@rxvmm/virtio';
import { Subject, type Subscription } from 'rxjs';
import type { ChainDevice } from './chain-device.js';
import { openQueue } from './open-queue.js';
import { serveQueue } from './serve-queue.js';

interface ServedQueue {
  kicks: Subject<void>;
  subscription: Subscription;
}

export class DeviceServer implements VirtioDevice {
  readonly deviceType: number;
  readonly features: bigint;
  readonly queueMaxSizes: readonly number[];
  #served: (ServedQueue | undefined)[] = [];
  #failure: unknown = undefined;

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
    this.device.checkActivation?.(activation);
    this.device.setFeatures?.(activation.features);
    // Build every queue before serving any: a bad layout (VirtqueueError) fails activation whole.
    const queues = activation.queues.map((q) => (q.ready ? openQueue(this.memory, q) : undefined));
    this.#served = queues.map((queue, index) => {
      if (!queue) return undefined;
      const kicks = new Subject<void>();
      const loop = serveQueue(
        queue,
        (chain) => this.device.handleChain(chain, this.memory, index),
        this.device.serveOptions?.(index),
      );
      const subscription = kicks.pipe(loop).subscribe({
        next: () => activation.signalUsedBuffer(index),
        error: (error: unknown) => {
          if (this.#failure !== undefined) return;
          this.#failure = error;
          this.#stop(); // every queue stops touching guest memory until reset
          activation.needsReset(error);
        },
      });
      return { kicks, subscription };
    });
  }

  queueNotify(queueIndex: number): void {
    this.#served[queueIndex]?.kicks.next();
  }

  async reset(): Promise<void> {
    this.#stop();
    this.#failure = undefined;
    await this.device.reset?.();
  }

  /** Abandons every queue: requests in flight finish but never touch the rings. */
  #stop(): void {
    const served = this.#served;
    this.#served = [];
    for (const s of served) s?.subscription.unsubscribe();
  }
}
