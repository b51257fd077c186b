// A tiny device for protocol tests: copies each chain's readable bytes,
// upper-cased, into its writable part. Async when `delayMs` is set, so tests
// can keep requests in flight.
import type { GuestMemory } from '@rxvmm/guest-memory';
import { featureBit, VirtioFeature } from '@rxvmm/virtio';
import { type DescriptorChain, readSegments, writeSegments } from '@rxvmm/virtio-ring';
import type { VhostUserDevice } from '../src/index.js';

export class EchoDevice implements VhostUserDevice {
  readonly features = featureBit(VirtioFeature.VERSION_1) | featureBit(VirtioFeature.EVENT_IDX);
  readonly maxQueueSize = 256;
  resets = 0;
  handled = 0;
  config = new Uint8Array(16).map((_, i) => i + 1);

  constructor(
    readonly numQueues = 2,
    public delayMs = 0,
  ) {}

  readConfig(): Uint8Array {
    return this.config;
  }

  writeConfig(offset: number, data: Uint8Array): void {
    this.config.set(data, offset);
  }

  handleChain(chain: DescriptorChain, memory: GuestMemory): number | Promise<number> {
    const input = new Uint8Array(chain.readableLength);
    readSegments(memory, chain.readable, input);
    const output = new TextEncoder()
      .encode(new TextDecoder().decode(input).toUpperCase())
      .subarray(0, chain.writableLength);
    const finish = (): number => {
      writeSegments(memory, chain.writable, output);
      this.handled++;
      return output.length;
    };
    if (this.delayMs === 0) return finish();
    return new Promise((resolve) => setTimeout(() => resolve(finish()), this.delayMs));
  }

  reset(): void {
    this.resets++;
  }
}
