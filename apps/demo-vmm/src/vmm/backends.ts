/**
 * The back-end side of the device, on the main thread: what serves queue 0
 * once the register file (on the vCPU thread) reports DRIVER_OK.
 *
 * - `BlockService`: `VirtioBlk` from @rxvmm/virtio-blk over the same guest RAM,
 *   woken by the kick eventfd, completing through `inject` (irqfd or KVM_IRQ_LINE).
 * - `VhostService`: hands the queue to a vhost-user back-end in another process
 *   (kick = the ioeventfd's eventfd, call = the irqfd's eventfd).
 */
import type { VhostUserDeviceProxy } from '@rxvmm/vhost-user';
import type { VirtioActivationInfo } from '@rxvmm/virtio';
import type { VirtioBlk } from '@rxvmm/virtio-blk';
import type { HostEvent } from './device-host.js';
import { SharedState, SharedWord } from './layout.js';

export interface DeviceService {
  /** An event from the register file. */
  onHostEvent(event: HostEvent): void;
  /** `count` kicks of queue 0 were read from the kick eventfd (BlockService only). */
  onKick?(count: bigint): void;
  /** Why the device went to NEEDS_RESET, if it did. */
  readonly failure: string | undefined;
  close(): Promise<void>;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class BlockService implements DeviceService {
  #active = false;
  #pendingKick = false;
  #paused = false;
  /** Doorbells that reached the device while it was paused (rung, not served yet). */
  kicksWhilePaused = 0;
  #failure: string | undefined;
  readonly #shared: SharedState;

  constructor(
    readonly blk: VirtioBlk,
    shared: SharedArrayBuffer,
    /** Raise the device interrupt (irqfd write, or KVM_IRQ_LINE 1 then 0). */
    readonly inject: () => void,
  ) {
    this.#shared = new SharedState(shared);
  }

  get failure(): string | undefined {
    return this.#failure;
  }

  onHostEvent(event: HostEvent): void {
    switch (event.type) {
      case 'activated':
        this.#activate(event.info);
        return;
      case 'reset':
        this.#active = false;
        this.#pendingKick = false;
        void this.blk.reset();
        return;
      case 'needs-reset':
        this.#failure ??= event.reason;
        return;
      case 'interrupt':
        this.inject();
        return;
    }
  }

  onKick(): void {
    if (this.#paused) this.kicksWhilePaused++; // the paused DeviceServer keeps it for resume/restore
    // The kick may overtake the activation message (two channels): keep it for later.
    if (!this.#active) {
      this.#pendingKick = true;
      return;
    }
    this.blk.queueNotify(0);
  }

  #activate(info: VirtioActivationInfo): void {
    try {
      this.blk.activate({
        ...info,
        signalUsedBuffer: () => this.inject(),
        signalConfigChange: () => this.inject(),
        needsReset: (error) => this.#fail(error),
      });
    } catch (error) {
      this.#fail(error);
      return;
    }
    this.#active = true;
    if (this.#pendingKick) {
      this.#pendingKick = false;
      this.blk.queueNotify(0);
    }
  }

  /** A ring error: DEVICE_NEEDS_RESET (applied by the register file) plus a config interrupt. */
  #fail(error: unknown): void {
    if (this.#failure !== undefined && this.#shared.get(SharedWord.needsReset)) return;
    this.#failure = describe(error);
    this.#active = false;
    this.#shared.set(SharedWord.needsReset, 1);
    this.inject();
  }

  /** Snapshots: drains the device (requests in flight complete and are published), then holds it. */
  async pause(): Promise<void> {
    this.#paused = true;
    this.kicksWhilePaused = 0;
    await this.blk.pause();
  }

  /** Serves again after `pause()`, kicked doorbells first. */
  resume(): void {
    this.#paused = false;
    this.blk.resume();
  }

  async close(): Promise<void> {
    await this.blk.close();
  }
}

/**
 * `--vhost-user`: the queue is served by a vhost-user back-end through
 * `VhostUserDeviceProxy` (kick = the kick eventfd the ioeventfd signals, call =
 * the irqfd's eventfd when irqfd is on; otherwise the proxy's own call eventfd
 * whose signals this VMM injects with KVM_IRQ_LINE).
 */
export class VhostService implements DeviceService {
  #failure: string | undefined;
  #work: Promise<void> = Promise.resolve();
  readonly #shared: SharedState;

  constructor(
    readonly proxy: VhostUserDeviceProxy,
    shared: SharedArrayBuffer,
    readonly inject: () => void,
  ) {
    this.#shared = new SharedState(shared);
  }

  get failure(): string | undefined {
    return this.#failure;
  }

  onHostEvent(event: HostEvent): void {
    switch (event.type) {
      case 'activated': {
        const info = event.info;
        this.#work = this.#work
          .then(() =>
            this.proxy.activate({
              ...info,
              signalUsedBuffer: () => this.inject(),
              needsReset: (error) => this.#fail(error),
            }),
          )
          .catch((error) => this.#fail(error));
        return;
      }
      case 'reset':
        this.#work = this.#work.then(() => this.proxy.reset()).catch(() => undefined);
        return;
      case 'needs-reset':
        this.#failure ??= event.reason;
        return;
      case 'interrupt':
        this.inject();
        return;
    }
  }

  #fail(error: unknown): void {
    if (this.#failure !== undefined) return;
    this.#failure = `vhost-user: ${describe(error)}`;
    this.#shared.set(SharedWord.needsReset, 1);
    this.inject();
  }

  async close(): Promise<void> {
    await this.#work.catch(() => undefined);
    await this.proxy.close();
  }
}
