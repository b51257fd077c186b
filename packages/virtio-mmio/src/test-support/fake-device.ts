/** A recording VirtioDevice for transport tests: no queue processing, just calls. */
import type { VirtioActivation, VirtioDevice } from '@rxvmm/virtio';

export class FakeDevice implements VirtioDevice {
  readonly deviceType: number;
  readonly features: bigint;
  readonly queueMaxSizes: readonly number[];
  readonly vendorId = 0x1af4;
  readonly config: Uint8Array;
  activations: VirtioActivation[] = [];
  resets = 0;
  notifies: number[] = [];
  activateImpl: ((a: VirtioActivation) => void | Promise<void>) | undefined;
  validateFeatures?: (features: bigint) => boolean;

  constructor(options: {
    deviceType?: number;
    features: bigint;
    queueMaxSizes: number[];
    config?: Uint8Array;
  }) {
    this.deviceType = options.deviceType ?? 2;
    this.features = options.features;
    this.queueMaxSizes = options.queueMaxSizes;
    this.config = options.config ?? new Uint8Array(16);
  }
  readConfig(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) data[i] = this.config[offset + i] ?? 0;
  }
  writeConfig(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++)
      if (offset + i < this.config.length) this.config[offset + i] = data[i] ?? 0;
  }
  activate(activation: VirtioActivation): void | Promise<void> {
    this.activations.push(activation);
    return this.activateImpl?.(activation);
  }
  reset(): void {
    this.resets++;
  }
  queueNotify(queueIndex: number): void {
    this.notifies.push(queueIndex);
  }
}
