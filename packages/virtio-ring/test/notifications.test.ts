/**
 * Liveness of notification suppression: whatever the ring indices and wrap
 * counters, once one side has (re-)enabled notifications and the other side
 * then publishes work, at least one of its "notify?" decisions is true. A
 * false negative here is a hung guest or device.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Virtqueue } from '../src/index.js';
import { MockPackedDriver, MockSplitDriver } from '../src/testing/index.js';

type Mock = MockSplitDriver | MockPackedDriver;

function make(kind: 'split' | 'packed', size: number, eventIdx: boolean): { drv: Mock; q: Virtqueue } {
  const opts = { size, eventIdx, memoryBytes: 1 << 16 };
  const drv = kind === 'split' ? new MockSplitDriver(opts) : new MockPackedDriver(opts);
  return { drv, q: drv.device() };
}

/** Moves the indices / wrap counters somewhere random, leaving nothing in flight. */
function warmUp(drv: Mock, q: Virtqueue, rounds: readonly number[]): void {
  for (const n of rounds) {
    const k = Math.min(n, drv.driver.numFree);
    for (let i = 0; i < k; i++) drv.add({ writable: [1] });
    drv.needsKick();
    for (let c = q.pop(); c; c = q.pop()) q.pushUsed(c.head, 1);
    q.needsNotification();
    drv.drainUsed();
  }
}

/** Splits `total` into batch sizes from `cuts`. */
function batches(total: number, cuts: readonly number[]): number[] {
  const out: number[] = [];
  let left = total;
  for (const c of cuts) {
    if (left === 0) break;
    const n = Math.min(left, 1 + (c % left));
    out.push(n);
    left -= n;
  }
  if (left > 0) out.push(left);
  return out;
}

const sizes = { split: [1, 2, 4, 8, 16], packed: [1, 2, 3, 5, 8, 13] };

describe('notification suppression never loses a notification', () => {
  for (const kind of ['split', 'packed'] as const) {
    for (const eventIdx of [false, true]) {
      const name = `${kind}${eventIdx ? ' + EVENT_IDX' : ''}`;

      it(`${name}: kicks after the device re-enabled them`, () => {
        fc.assert(
          fc.property(
            fc.constantFrom(...sizes[kind]),
            fc.array(fc.integer({ min: 0, max: 16 }), { maxLength: 40 }),
            fc.integer({ min: 1, max: 16 }),
            fc.array(fc.nat(), { maxLength: 8 }),
            (size, warm, count, cuts) => {
              const { drv, q } = make(kind, size, eventIdx);
              warmUp(drv, q, warm);
              q.disableNotifications();
              expect(q.enableNotifications()).toBe(false);
              const decisions: boolean[] = [];
              for (const b of batches(Math.min(count, size), cuts)) {
                for (let i = 0; i < b; i++) drv.add({ writable: [1] });
                decisions.push(drv.needsKick());
              }
              expect(decisions).toContain(true);
            },
          ),
          { numRuns: 400 },
        );
      });

      it(`${name}: interrupts after the driver re-enabled them`, () => {
        fc.assert(
          fc.property(
            fc.constantFrom(...sizes[kind]),
            fc.array(fc.integer({ min: 0, max: 16 }), { maxLength: 40 }),
            fc.integer({ min: 1, max: 16 }),
            fc.array(fc.nat(), { maxLength: 8 }),
            (size, warm, count, cuts) => {
              const { drv, q } = make(kind, size, eventIdx);
              warmUp(drv, q, warm);
              const n = Math.min(count, size);
              for (let i = 0; i < n; i++) drv.add({ writable: [1] });
              const heads: number[] = [];
              for (let c = q.pop(); c; c = q.pop()) heads.push(c.head);
              expect(heads).toHaveLength(n);
              drv.driver.disableInterrupts();
              expect(drv.driver.enableInterrupts()).toBe(false);
              const decisions: boolean[] = [];
              for (const b of batches(n, cuts)) {
                for (const h of heads.splice(0, b)) q.addUsed(h, 1);
                decisions.push(q.needsNotification());
              }
              expect(decisions).toContain(true);
              expect(drv.drainUsed()).toHaveLength(n);
            },
          ),
          { numRuns: 400 },
        );
      });
    }
  }
});
