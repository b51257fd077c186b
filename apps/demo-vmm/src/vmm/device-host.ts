/**
 * The vCPU side of the device: the virtio-mmio register file with an
 * `ExternalDevice` (the queues are served elsewhere: the back-end on the main
 * thread, or a vhost-user back-end in another process). It runs where the MMIO
 * exit is taken (the vCPU worker on KVM), so every register access is answered
 * with no thread hop. It reports activation/reset to the back-end side and
 * takes DEVICE_NEEDS_RESET from it through shared memory.
 */
import type { VirtioActivationInfo } from '@rxvmm/virtio';
import { ExternalDevice, VirtioMmioTransport, type VirtioMmioTransportState } from '@rxvmm/virtio-mmio';
import { MMIO_BASE, MMIO_SIZE, SharedState, SharedWord } from './layout.js';

/** What the register file tells the back-end side. */
export type HostEvent =
  | { type: 'activated'; info: VirtioActivationInfo }
  | { type: 'reset' }
  | { type: 'needs-reset'; reason: string }
  /** An interrupt raised by the register file itself (a config change): the back-end side injects it. */
  | { type: 'interrupt' }
  | { type: 'warning'; message: string };

export interface DeviceHostOptions {
  deviceType: number;
  features: bigint;
  queueMaxSizes: readonly number[];
  config: Uint8Array;
  ramSize: number;
  shared: SharedArrayBuffer;
  emit(event: HostEvent): void;
  /** A QueueNotify that reached the VMM (no ioeventfd absorbed it). */
  kick(queue: number): void;
  /** A restored snapshot's register file: the device is activated again from it at once. */
  transportState?: VirtioMmioTransportState;
}

export class DeviceHost {
  readonly transport: VirtioMmioTransport;
  readonly device: ExternalDevice;
  readonly #shared: SharedState;
  #applying = false;

  constructor(options: DeviceHostOptions) {
    this.#shared = new SharedState(options.shared);
    this.device = new ExternalDevice({
      deviceType: options.deviceType,
      features: options.features,
      queueMaxSizes: options.queueMaxSizes,
      config: options.config,
    });
    const ramSize = BigInt(options.ramSize);
    // Plain listeners, not the x$ streams: this runs in the vCPU worker, which loads no RxJS.
    // (Before the transport: a restored one activates the device as it is made.)
    this.device.on('activated', (info) => options.emit({ type: 'activated', info }));
    this.device.on('kick', (queue) => options.kick(queue));
    const transportOptions = {
      // The completions bypass this register file (irqfd): InterruptStatus always shows "used buffer".
      alwaysReportUsedBuffer: true,
      isValidRange: (addr: bigint, len: number) => addr >= 0n && addr + BigInt(len) <= ramSize,
    };
    this.transport = options.transportState
      ? VirtioMmioTransport.fromState(this.device, options.transportState, transportOptions)
      : new VirtioMmioTransport(this.device, transportOptions);
    this.#shared.set(SharedWord.status, this.transport.status);
    this.transport.on('reset', () => {
      this.#shared.set(SharedWord.needsReset, 0);
      this.#shared.set(SharedWord.needsResetApplied, 0);
      options.emit({ type: 'reset' });
    });
    this.transport.on('needsReset', ({ reason }) => {
      this.#shared.set(SharedWord.needsResetApplied, 1);
      if (!this.#applying) options.emit({ type: 'needs-reset', reason });
    });
    // The back-end side already injected the interrupt that goes with a NEEDS_RESET it reported.
    this.transport.on('interrupt', () => {
      if (!this.#applying) options.emit({ type: 'interrupt' });
    });
  }

  /** Serves an MMIO exit if it falls in the window; false otherwise. */
  handleMmio(addr: bigint, isWrite: boolean, data: Uint8Array): boolean {
    if (addr < MMIO_BASE || addr >= MMIO_BASE + BigInt(MMIO_SIZE)) return false;
    this.applySharedState();
    this.transport.handleMmio(Number(addr - MMIO_BASE), isWrite, data);
    this.#shared.set(SharedWord.status, this.transport.status);
    return true;
  }

  /** Takes a NEEDS_RESET the back-end reported through shared memory. */
  applySharedState(): void {
    if (this.#shared.get(SharedWord.needsReset) === 0 || this.#shared.get(SharedWord.needsResetApplied) !== 0)
      return;
    this.#applying = true;
    try {
      this.transport.setNeedsReset('the device back-end met an error it cannot recover from');
    } finally {
      this.#applying = false;
    }
    this.#shared.set(SharedWord.status, this.transport.status);
  }
}
