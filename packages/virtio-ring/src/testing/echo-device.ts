import { errnoError } from '@rxvmm/errno';
import type { GuestMemory } from '@rxvmm/guest-memory';
import { featureBit, VirtioFeature } from '@rxvmm/virtio';
import { type DescriptorChain, readSegments, writeSegments } from '../chain.js';
import type { ChainDevice } from '../chain-device.js';

/** Largest request echoed; a longer chain (hostile: overlapping descriptors) fails the device. */
export const ECHO_MAX_REQUEST = 64 * 1024;

/** Not a device of the virtio spec: the ID rxvmm's echo test device reports. */
export const ECHO_DEVICE_TYPE = 0xffff;

/** Options of `new EchoDevice(options)`. */
export interface EchoDeviceOptions {
  /** Number of queues (default 1), each served the same way. */
  queues?: number;
  /** Largest queue size offered (default 256). */
  queueSize?: number;
  /** Complete each request after this many milliseconds (default 0: at once), so requests stay in flight. */
  delayMs?: number;
  /** Complete each request on a later turn of the event loop (out of order), not at once. */
  async?: boolean;
  /** Offer VIRTIO_F_RING_PACKED too (default false). */
  packed?: boolean;
}

/**
 * The smallest useful device: each chain's device-readable bytes are written
 * back, upper-cased, into its device-writable buffers (as many as fit). Its
 * configuration space is 16 writable bytes, initially 1..16. It runs in every
 * hosting mode (a `DeviceServer` behind a transport, a vhost-user back-end),
 * which is what the tests of each use it for.
 */
export class EchoDevice implements ChainDevice {
  readonly deviceType = ECHO_DEVICE_TYPE;
  readonly features: bigint;
  readonly queueMaxSizes: readonly number[];
  readonly config = new Uint8Array(16).map((_, i) => i + 1);
  /** Requests completed since construction. */
  handled = 0;
  /** Times the device was reset. */
  resets = 0;
  /** Milliseconds each request takes (0: synchronous); may be changed between requests. */
  delayMs: number;
  readonly #async: boolean;

  constructor(options: EchoDeviceOptions = {}) {
    this.queueMaxSizes = Array.from({ length: options.queues ?? 1 }, () => options.queueSize ?? 256);
    this.features =
      featureBit(VirtioFeature.VERSION_1) |
      featureBit(VirtioFeature.EVENT_IDX) |
      featureBit(VirtioFeature.INDIRECT_DESC) |
      (options.packed ? featureBit(VirtioFeature.RING_PACKED) : 0n);
    this.delayMs = options.delayMs ?? 0;
    this.#async = options.async ?? false;
  }

  get configSize(): number {
    return this.config.length;
  }

  readConfig(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) data[i] = this.config[offset + i] ?? 0;
  }

  writeConfig(offset: number, data: Uint8Array): void {
    if (offset + data.length > this.config.length)
      throw errnoError('EINVAL', `config write [${offset}, +${data.length}) is out of range`);
    this.config.set(data, offset);
  }

  handleChain(chain: DescriptorChain, memory: GuestMemory): number | Promise<number> {
    if (chain.readableLength > ECHO_MAX_REQUEST)
      throw errnoError(
        'EMSGSIZE',
        `echo request of ${chain.readableLength} bytes (at most ${ECHO_MAX_REQUEST})`,
      );
    const request = new Uint8Array(chain.readableLength);
    readSegments(memory, chain.readable, request);
    const reply = new TextEncoder()
      .encode(new TextDecoder().decode(request).toUpperCase())
      .subarray(0, chain.writableLength);
    const finish = (): number => {
      const written = writeSegments(memory, chain.writable, reply);
      this.handled++;
      return written;
    };
    if (this.delayMs === 0 && !this.#async) return finish();
    // Later: a failure then rejects (the loop fails the device), never throws from a timer.
    return new Promise((resolve, reject) =>
      setTimeout(() => {
        try {
          resolve(finish());
        } catch (error) {
          reject(error);
        }
      }, this.delayMs),
    );
  }

  reset(): void {
    this.resets++;
  }

  /** Its configuration space, as plain data (the device's own state beside its rings'). */
  state(): { version: 1; config: number[] } {
    return { version: 1, config: [...this.config] };
  }

  restoreState(state: unknown): void {
    const s = state as { version?: unknown; config?: unknown };
    const config = s?.config;
    if (
      s?.version !== 1 ||
      !Array.isArray(config) ||
      config.length !== this.config.length ||
      !config.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)
    )
      throw errnoError('EINVAL', 'bad echo device state');
    this.config.set(config as number[]);
  }
}
