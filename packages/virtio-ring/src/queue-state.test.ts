import { describe, expect, it } from 'vitest';
import { VirtqueueError } from './errors.js';
import { restoreQueue } from './open-queue.js';
import { PackedQueue } from './packed-queue.js';
import type { QueueState } from './queue-state.js';
import { SplitQueue } from './split-queue.js';
import { MockPackedDriver, MockSplitDriver } from './testing/index.js';
import type { Virtqueue } from './virtqueue.js';

const text = (s: string) => new TextEncoder().encode(s);
/** Through JSON and back, as a snapshot file holds it. */
const viaJson = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/** What the device side does after the snapshot: the outputs a restored queue must reproduce. */
function serveAll(q: Virtqueue): unknown[] {
  const log: unknown[] = [];
  for (let round = 0; round < 2; round++) {
    for (let chain = q.pop(); chain !== null; chain = q.pop()) {
      log.push(['pop', chain.head, chain.readableLength, chain.writableLength]);
      q.addUsed(chain.head, Math.min(3, chain.writableLength));
    }
    log.push(['notify', q.needsNotification()]);
    log.push(['enable', q.enableNotifications()]);
  }
  log.push(['state', q.state()]);
  return log;
}

for (const Driver of [MockSplitDriver, MockPackedDriver]) {
  const kind = Driver === MockSplitDriver ? 'split' : 'packed';
  describe(`${kind} queue state as plain data`, () => {
    /** A queue in the middle of its life: wrapped indices, chains popped and not used, some published. */
    function midLife() {
      const drv = new Driver({ size: 8, eventIdx: true, indirect: true });
      const q = drv.device();
      drv.driver.enableInterrupts();
      for (let i = 0; i < 13; i++) {
        drv.add({ readable: [text(`r${i}`)], writable: [4] });
        const chain = q.pop()!;
        q.pushUsed(chain.head, 1);
        q.needsNotification();
        drv.drainUsed();
      }
      drv.add({ readable: [text('in flight')], writable: [8] });
      const inflight = q.pop()!;
      drv.add({ readable: [text('a'), text('b')], writable: [2, 2], indirect: true });
      drv.add({ readable: [text('queued')], writable: [6] });
      return { drv, q, inflight };
    }

    it('round-trips: state → JSON → fromState → state is the same value', () => {
      const { drv, q } = midLife();
      const saved = viaJson(q.state());
      expect(saved.version).toBe(1);
      expect(saved.kind).toBe(kind);
      expect(typeof saved.config.descTable).toBe('string');
      const restored = restoreQueue(drv.memory, saved);
      expect(restored).toBeInstanceOf(Driver === MockSplitDriver ? SplitQueue : PackedQueue);
      expect(viaJson(restored.state())).toEqual(saved);
    });

    it('a restored queue behaves like the original (same chains, used ring, interrupt decisions)', () => {
      const { drv, q, inflight } = midLife();
      const saved = viaJson(q.state());
      const ram = new Uint8Array(drv.buffer);
      const before = ram.slice();
      q.pushUsed(inflight.head, 2);
      const original = serveAll(q);
      const ramAfter = ram.slice();
      ram.set(before); // back to the guest memory of the snapshot
      const restored = restoreQueue(drv.memory, saved);
      restored.pushUsed(inflight.head, 2);
      expect(serveAll(restored)).toEqual(original);
      expect(Buffer.compare(ram, ramAfter)).toBe(0); // the same used ring and written bytes
      expect(original.filter((e) => (e as unknown[])[0] === 'pop')).toHaveLength(2);
    });

    it('a broken queue stays broken with the same error', () => {
      const drv = new Driver({ size: 8 });
      const q = drv.device();
      if (drv instanceof MockSplitDriver) drv.publishHead(42);
      else drv.setDescriptor(0, { addr: 1n << 60n, len: 4, flags: 1 << 7 });
      expect(() => q.pop()).toThrow(VirtqueueError);
      const restored = restoreQueue(drv.memory, viaJson(q.state()));
      expect(restored.broken).toMatchObject({ code: q.broken!.code, reason: q.broken!.reason });
      expect(restored.broken!.message).toBe(q.broken!.message);
      expect(() => restored.pop()).toThrow(q.broken!.message);
    });

    describe('refuses a state it could not have written (EINVAL, nothing built)', () => {
      const { drv, q } = midLife();
      const good = viaJson(q.state());
      const cases: [string, (s: Record<string, unknown>) => unknown][] = [
        ['not an object', () => 'queue'],
        ['another version', (s) => ({ ...s, version: 2 })],
        ['another kind', (s) => ({ ...s, kind: kind === 'split' ? 'packed' : 'split' })],
        ['a number address', (s) => ({ ...s, config: { ...(s.config as object), descTable: 65536 } })],
        [
          'an address past 2^64',
          (s) => ({ ...s, config: { ...(s.config as object), descTable: (1n << 64n).toString() } }),
        ],
        ['a size of 0', (s) => ({ ...s, config: { ...(s.config as object), size: 0 } })],
        ['a missing broken field', (s) => ({ ...s, broken: undefined })],
        [
          'a broken with an unknown code',
          (s) => ({ ...s, broken: { code: 'EPERM', reason: 'x', message: 'y' } }),
        ],
      ];
      if (kind === 'split') {
        cases.push(['an index past u16', (s) => ({ ...s, nextAvail: 65536 })]);
        cases.push([
          'a shadow beyond the queue size',
          (s) => ({ ...s, availShadow: ((s.nextAvail as number) + 9) & 0xffff }),
        ]);
        cases.push(['a string flag', (s) => ({ ...s, dirty: 'yes' })]);
      } else {
        cases.push(['a position past the ring', (s) => ({ ...s, availPos: 8 })]);
        cases.push(['a wrap counter of 2', (s) => ({ ...s, usedWrap: 2 })]);
        cases.push([
          'a buffer id in flight twice',
          (s) => ({
            ...s,
            inflight: [
              [1, 1],
              [1, 1],
            ],
          }),
        ]);
        cases.push([
          'more slots in flight than the ring has',
          (s) => ({
            ...s,
            inflight: [
              [1, 5],
              [2, 5],
            ],
          }),
        ]);
        cases.push(['a malformed inflight entry', (s) => ({ ...s, inflight: [[1]] })]);
      }
      it.each(cases)('%s', (_, mutate) => {
        const hostile = mutate(viaJson(good) as unknown as Record<string, unknown>) as QueueState;
        expect(() => restoreQueue(drv.memory, hostile)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
      });

      it('a layout outside guest memory: the constructor’s VirtqueueError (EFAULT)', () => {
        const hostile = viaJson(good);
        hostile.config.deviceArea = (1n << 40n).toString();
        expect(() => restoreQueue(drv.memory, hostile)).toThrow(
          expect.objectContaining({ code: 'EFAULT', reason: 'ring-out-of-memory' }),
        );
      });
    });
  });
}
