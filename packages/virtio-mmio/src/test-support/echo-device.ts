/** A ring-backed test device: copies each chain's readable bytes into its writable part. */
import { featureBit, type VirtioActivation, type VirtioDevice, VirtioFeature } from '@rxvmm/virtio';
import { type GuestMemory, openQueue, readSegments, type Virtqueue, writeSegments } from '@rxvmm/virtio-ring';

export class EchoDevice implements VirtioDevice {
  readonly deviceType = 0x7e;
  readonly features = featureBit(VirtioFeature.VERSION_1) | featureBit(VirtioFeature.EVENT_IDX);
  readonly queueMaxSizes = [64];
  #queue: Virtqueue | undefined;
  #activation: VirtioActivation | undefined;
  constructor(readonly memory: GuestMemory) {}
  readConfig(_offset: number, data: Uint8Array): void {
    data.fill(0);
  }
  writeConfig(): void {}
  activate(activation: VirtioActivation): void {
    const q = activation.queues[0];
    if (!q?.ready) throw new Error('queue 0 not ready');
    // The transport filled the negotiated ring features (packed, eventIdx, indirect) into q.
    this.#queue = openQueue(this.memory, q);
    this.#activation = activation;
  }
  reset(): void {
    this.#queue = undefined;
    this.#activation = undefined;
  }
  queueNotify(): void {
    const queue = this.#queue;
    if (!queue || !this.#activation) return;
    try {
      for (let chain = queue.pop(); chain; chain = queue.pop()) {
        const bytes = new Uint8Array(Math.min(chain.readableLength, chain.writableLength));
        readSegments(this.memory, chain.readable, bytes);
        queue.pushUsed(chain.head, writeSegments(this.memory, chain.writable, bytes));
      }
      if (queue.needsNotification()) this.#activation.signalUsedBuffer(0);
    } catch (error) {
      this.#queue = undefined;
      this.#activation.needsReset(error);
    }
  }
}
