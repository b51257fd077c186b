import { errnoError } from '@rxvmm/errno';
import type { GuestMemory } from '@rxvmm/guest-memory';
import { featureBit, VirtioFeature } from '@rxvmm/virtio';
import { type DescriptorChain, readSegments, writeSegments } from '../chain.js';
import type { ChainDevice } from '../chain-device.js';

/** Largest request echoed; a longer chain (hostile: overlapping descriptors) fails the device. */
export const ECHO_MAX_REQUEST = 64 * 1024;

/** Not a device of the virtio spec: the ID rxvmm's echo test device reports. */
export const ECHO_DEVICE_TYPE = 0xffff;

export interface EchoDeviceOptions {
  /** Queue size offered (default 256). */
  queueSize?: number;
  /** Complete each request on a later turn of the event loop (out of order), not at once. */
  async?: boolean;
  /** Offer VIRTIO_F_RING_PACKED too (default false). */
  packed?: boolean;
}

/**
 * The smallest useful device: one queue; each chain's device-readable bytes
 * are written back, upper-cased, into its device-writable buffers. Its
 * configuration space is one little-endian u64, the number of requests served.
 * It runs in both hosting modes (a `DeviceServer` behind a transport, and a
 * vhost-user back-end), which is what the tests of both use it for.
 */
export class EchoDevice implements ChainDevice {
  readonly deviceType = ECHO_DEVICE_TYPE;
  readonly features: bigint;
  readonly queueMaxSizes: readonly number[];
  readonly configSize = 8;
  served = 0n;
  readonly #async: boolean;

  constructor(options: EchoDeviceOptions = {}) {
    this.queueMaxSizes = [options.queueSize ?? 256];
    this.features =
      featureBit(VirtioFeature.VERSION_1) |
      featureBit(VirtioFeature.EVENT_IDX) |
      featureBit(VirtioFeature.INDIRECT_DESC) |
      (options.packed ? featureBit(VirtioFeature.RING_PACKED) : 0n);
    this.#async = options.async ?? false;
  }

  readConfig(offset: number, data: Uint8Array): void {
    const config = new Uint8Array(8);
    new DataView(config.buffer).setBigUint64(0, this.served, true);
    for (let i = 0; i < data.length; i++) data[i] = config[offset + i] ?? 0;
  }

  handleChain(chain: DescriptorChain, memory: GuestMemory): number | Promise<number> {
    if (chain.readableLength > ECHO_MAX_REQUEST)
      throw errnoError('EMSGSIZE', `echo request of ${chain.readableLength} bytes (at most ${ECHO_MAX_REQUEST})`);
    const request = new Uint8Array(chain.readableLength);
    readSegments(memory, chain.readable, request);
    const upper = new TextEncoder().encode(new TextDecoder().decode(request).toUpperCase());
    const reply = () => {
      this.served++;
      return writeSegments(memory, chain.writable, upper);
    };
    if (!this.#async) return reply();
    return new Promise((resolve, reject) =>
      setImmediate(() => {
        try {
          resolve(reply());
        } catch (error) {
          reject(error);
        }
      }),
    );
  }

  reset(): void {
    this.served = 0n;
  }
}
