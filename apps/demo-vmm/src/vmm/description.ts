/**
 * Hands the device's description (type, features, queue sizes, config bytes)
 * to the vCPU worker through a SharedArrayBuffer, so the worker can start (and
 * the guest can boot) while this thread still opens the disk or talks to a
 * vhost-user back-end. The worker blocks (Atomics.wait) at the guest's first
 * access to the device window until the description is published.
 */
import type { DeviceDescription } from './device.js';

const READY = 0;
const TYPE = 1;
const FEAT_LO = 2;
const FEAT_HI = 3;
const QUEUES = 4;
const CONFIG_LEN = 5;
const QUEUE_SIZES = 8; // up to 8 queues
const MAX_QUEUES = 8;
const CONFIG_OFFSET = (QUEUE_SIZES + MAX_QUEUES) * 4;
const MAX_CONFIG = 256;

/** READY values. */
export const DescriptionState = { pending: 0, ready: 1, failed: -1 } as const;

export function createDescriptionBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(CONFIG_OFFSET + MAX_CONFIG);
}

export function publishDescription(buffer: SharedArrayBuffer, d: DeviceDescription): void {
  const w = new Int32Array(buffer, 0, CONFIG_OFFSET / 4);
  if (d.queueMaxSizes.length > MAX_QUEUES || d.config.length > MAX_CONFIG)
    throw new RangeError('device description too large');
  w[TYPE] = d.deviceType;
  w[FEAT_LO] = Number(d.features & 0xffff_ffffn) | 0;
  w[FEAT_HI] = Number(d.features >> 32n) | 0;
  w[QUEUES] = d.queueMaxSizes.length;
  d.queueMaxSizes.forEach((s, i) => {
    w[QUEUE_SIZES + i] = s;
  });
  w[CONFIG_LEN] = d.config.length;
  new Uint8Array(buffer, CONFIG_OFFSET, MAX_CONFIG).set(d.config);
  Atomics.store(w, READY, DescriptionState.ready);
  Atomics.notify(w, READY);
}

export function failDescription(buffer: SharedArrayBuffer): void {
  const w = new Int32Array(buffer, 0, CONFIG_OFFSET / 4);
  Atomics.store(w, READY, DescriptionState.failed);
  Atomics.notify(w, READY);
}

/** Waits (blocking this thread; workers only) for the description; undefined if the VMM failed to open the device. */
export function awaitDescription(
  buffer: SharedArrayBuffer,
  timeoutMs = 60_000,
): DeviceDescription | undefined {
  const w = new Int32Array(buffer, 0, CONFIG_OFFSET / 4);
  if (Atomics.load(w, READY) === DescriptionState.pending)
    Atomics.wait(w, READY, DescriptionState.pending, timeoutMs);
  if (Atomics.load(w, READY) !== DescriptionState.ready) return undefined;
  const n = w[QUEUES] ?? 0;
  return {
    deviceType: w[TYPE] ?? 0,
    features: (BigInt((w[FEAT_HI] ?? 0) >>> 0) << 32n) | BigInt((w[FEAT_LO] ?? 0) >>> 0),
    queueMaxSizes: Array.from({ length: n }, (_, i) => w[QUEUE_SIZES + i] ?? 0),
    config: new Uint8Array(buffer, CONFIG_OFFSET, w[CONFIG_LEN] ?? 0).slice(),
  };
}
