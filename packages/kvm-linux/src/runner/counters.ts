/**
 * Exit counters of a vCPU, in a SharedArrayBuffer: the vCPU's worker is the
 * only writer (one plain store per exit, no lock on the hot path); any thread
 * reads them at any time. Float64 slots count exactly up to 2^53 exits.
 */
import type { VcpuExit } from '@rxvmm/kvm';

/** The exit counters a `VcpuRunner` keeps, by name. */
export const COUNTER_NAMES = [
  /** Every return of `run()`. */
  'exits',
  'io',
  'ioIn',
  'ioOut',
  'mmio',
  'mmioRead',
  'mmioWrite',
  'hlt',
  /** KVM_RUN interrupted (kick, stop, immediate_exit). */
  'intr',
  'shutdown',
  'systemEvent',
  'internalError',
  'failEntry',
  'unknown',
] as const;

/** One of `COUNTER_NAMES`. */
export type CounterName = (typeof COUNTER_NAMES)[number];
/** Every counter's value at one moment (`counters.snapshot()`). */
export type CounterSnapshot = Record<CounterName, number>;

const INDEX = Object.fromEntries(COUNTER_NAMES.map((name, i) => [name, i])) as Record<CounterName, number>;

export function createCounterBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(COUNTER_NAMES.length * 8);
}

/** Read-only view for any thread. */
export class ExitCounters {
  protected readonly slots: Float64Array;

  constructor(readonly buffer: SharedArrayBuffer) {
    this.slots = new Float64Array(buffer);
  }

  /** The current value of one counter. */
  get(name: CounterName): number {
    return this.slots[INDEX[name]] ?? 0;
  }

  /** Every counter, read now (each is exact; together they may straddle an exit). */
  snapshot(): CounterSnapshot {
    const out = {} as CounterSnapshot;
    COUNTER_NAMES.forEach((name, i) => {
      out[name] = this.slots[i] ?? 0;
    });
    return out;
  }
}

/** The writer, used by the vCPU's own thread. */
export class ExitCounterWriter extends ExitCounters {
  count(exit: VcpuExit): void {
    const s = this.slots;
    s[0]! += 1;
    switch (exit.kind) {
      case 'io':
        s[INDEX.io]! += 1;
        s[exit.direction === 'in' ? INDEX.ioIn : INDEX.ioOut]! += 1;
        break;
      case 'mmio':
        s[INDEX.mmio]! += 1;
        s[exit.isWrite ? INDEX.mmioWrite : INDEX.mmioRead]! += 1;
        break;
      case 'hlt':
        s[INDEX.hlt]! += 1;
        break;
      case 'intr':
        s[INDEX.intr]! += 1;
        break;
      case 'shutdown':
        s[INDEX.shutdown]! += 1;
        break;
      case 'system-event':
        s[INDEX.systemEvent]! += 1;
        break;
      case 'internal-error':
        s[INDEX.internalError]! += 1;
        break;
      case 'fail-entry':
        s[INDEX.failEntry]! += 1;
        break;
      default:
        s[INDEX.unknown]! += 1;
    }
  }
}
