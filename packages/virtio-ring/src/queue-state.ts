/**
 * A virtqueue's device-side state as plain, versioned, JSON-serialisable data
 * (for snapshots, migration and debugging), and the checks that rebuild a
 * queue from it. The ring contents (descriptors, available and used rings)
 * live in guest memory and are saved with it; this is what the device keeps
 * outside guest memory: the configuration, the indices or wrap counters, the
 * event-index shadows and, for packed rings, the buffer IDs in flight.
 *
 * Addresses are decimal strings (JSON has no 64-bit integers). A state from a
 * file is untrusted input: every field is checked and anything else is one
 * `EINVAL` error, before a queue exists.
 */
import { errnoError } from '@rxvmm/errno';
import { VirtqueueError, type VirtqueueErrorReason } from './errors.js';
import type { QueueConfig } from './queue-config.js';

/** The `version` of every queue state this code writes and the only one it reads. */
export const QUEUE_STATE_VERSION = 1;

/** A {@link QueueConfig} as plain data: addresses as decimal strings, every option spelled out. */
export interface QueueConfigState {
  size: number;
  /** QueueNumMax, or null when the queue had none (32768 applies). */
  maxSize: number | null;
  descTable: string;
  driverArea: string;
  deviceArea: string;
  packed: boolean;
  eventIdx: boolean;
  indirect: boolean;
  strictOrder: boolean;
}

/** The error that broke a queue (it stays broken after a restore, until reset). */
export interface BrokenQueueState {
  code: 'EINVAL' | 'EFAULT';
  reason: VirtqueueErrorReason;
  message: string;
}

/** Device side of a split ring (`SplitQueue.state()`). */
export interface SplitQueueState {
  version: typeof QUEUE_STATE_VERSION;
  kind: 'split';
  config: QueueConfigState;
  /** Next avail index the device reads (vhost-user's VRING_BASE). */
  nextAvail: number;
  /** The driver's avail idx as last read: chains up to it are known to be published. */
  availShadow: number;
  /** Next used index the device writes. */
  nextUsed: number;
  /** Event-idx shadow: the used index at the last interrupt decision... */
  signalledUsed: number;
  /** ...and whether it is meaningful (false after a reset or a nextUsed change). */
  signalledValid: boolean;
  /** Used entries were added since the last interrupt decision. */
  dirty: boolean;
  /** Used entries were written but the used index not stored yet. */
  unpublished: boolean;
  broken: BrokenQueueState | null;
}

/** Device side of a packed ring (`PackedQueue.state()`). */
export interface PackedQueueState {
  version: typeof QUEUE_STATE_VERSION;
  kind: 'packed';
  config: QueueConfigState;
  /** Ring position of the next descriptor the device looks at, and the Driver Ring Wrap Counter. */
  availPos: number;
  availWrap: number;
  /** Ring position of the next used descriptor, and the Device Ring Wrap Counter. */
  usedPos: number;
  usedWrap: number;
  /** Event-index shadow: ring slots used since the last interrupt decision, and whether it is valid. */
  sinceSignal: number;
  signalledValid: boolean;
  dirty: boolean;
  /** Buffers popped and not yet used: [buffer id, ring slots it took], ascending by id. */
  inflight: [number, number][];
  broken: BrokenQueueState | null;
}

/** A queue's state as plain data (`queue.state()`, `restoreQueue`): split or packed. */
export type QueueState = SplitQueueState | PackedQueueState;

export function queueConfigState(config: Readonly<QueueConfig>): QueueConfigState {
  return {
    size: config.size,
    maxSize: config.maxSize ?? null,
    descTable: config.descTable.toString(),
    driverArea: config.driverArea.toString(),
    deviceArea: config.deviceArea.toString(),
    packed: config.packed ?? false,
    eventIdx: config.eventIdx ?? false,
    indirect: config.indirect ?? false,
    strictOrder: config.strictOrder ?? true,
  };
}

export function brokenQueueState(error: VirtqueueError | null): BrokenQueueState | null {
  if (!error) return null;
  const prefix = `${error.code}: `;
  const message = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
  return { code: error.code, reason: error.reason, message };
}

/** Checks a saved state's common part and returns the queue configuration it describes. */
export function checkedQueueState(state: unknown, kind: QueueState['kind']): QueueConfig {
  const s = record(state, 'queue state');
  if (s.version !== QUEUE_STATE_VERSION)
    throw bad(`queue state version ${String(s.version)} (this code reads version ${QUEUE_STATE_VERSION})`);
  if (s.kind !== kind) throw bad(`queue state of kind ${String(s.kind)}, expected ${kind}`);
  const c = record(s.config, 'queue state config');
  const maxSize = c.maxSize === null ? undefined : int(c.maxSize, 'config.maxSize', 1, 32768);
  const config: QueueConfig = {
    size: int(c.size, 'config.size', 1, 32768),
    descTable: u64(c.descTable, 'config.descTable'),
    driverArea: u64(c.driverArea, 'config.driverArea'),
    deviceArea: u64(c.deviceArea, 'config.deviceArea'),
    packed: bool(c.packed, 'config.packed'),
    eventIdx: bool(c.eventIdx, 'config.eventIdx'),
    indirect: bool(c.indirect, 'config.indirect'),
    strictOrder: bool(c.strictOrder, 'config.strictOrder'),
  };
  if (maxSize !== undefined) config.maxSize = maxSize;
  if (config.packed !== (kind === 'packed'))
    throw bad(`a ${kind} queue state with config.packed ${String(config.packed)}`);
  return config;
}

/** The error a restored queue stays broken by, or null. */
export function checkedBroken(value: unknown): VirtqueueError | null {
  if (value === null) return null;
  const b = record(value, 'broken');
  if (b.code !== 'EINVAL' && b.code !== 'EFAULT') throw bad(`broken.code ${String(b.code)}`);
  if (typeof b.reason !== 'string' || typeof b.message !== 'string')
    throw bad('broken.reason and broken.message must be strings');
  return new VirtqueueError(b.code, b.reason as VirtqueueErrorReason, b.message);
}

export function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw bad(`${what} is not an object`);
  return value as Record<string, unknown>;
}

export function int(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw bad(`${what} = ${JSON.stringify(value)} is not an integer in [${min}, ${max}]`);
  return value;
}

export function bool(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') throw bad(`${what} = ${JSON.stringify(value)} is not a boolean`);
  return value;
}

function u64(value: unknown, what: string): bigint {
  if (typeof value !== 'string' || !/^(0|[1-9][0-9]{0,19})$/.test(value) || BigInt(value) >= 1n << 64n)
    throw bad(`${what} = ${JSON.stringify(value)} is not a u64 decimal string`);
  return BigInt(value);
}

export function bad(why: string): Error {
  return errnoError('EINVAL', `bad virtqueue state: ${why}`);
}
