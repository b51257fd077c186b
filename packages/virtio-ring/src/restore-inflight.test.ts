// restoreInflight (split and packed) and PackedQueue.descriptorAt: what a vhost-user back-end
// needs to serve again the chains that were in flight when it died.
import { describe, expect, it } from 'vitest';
import { readSegments } from './chain.js';
import { VirtqueueError } from './errors.js';
import type { PackedDescriptor } from './packed-queue.js';
import { MockPackedDriver, MockSplitDriver } from './testing/index.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe('SplitQueue.restoreInflight', () => {
  it('rebuilds a popped chain from its head without touching the rings; its used entry goes back', () => {
    const drv = new MockSplitDriver({ size: 8, indirect: true });
    const first = drv.device({ indirect: true });
    const a = drv.add({ readable: [enc('one'), enc('two')], writable: [4] });
    const b = drv.add({ readable: [enc('three')], writable: [8], indirect: true });
    const popped = [first.pop()!, first.pop()!];
    // The back-end dies here; a new queue object resumes after the two chains.
    const q = drv.device({ indirect: true });
    q.nextAvail = 2;
    for (const [head, original] of [
      [a, popped[0]!],
      [b, popped[1]!],
    ] as const) {
      const chain = q.restoreInflight(head);
      expect(chain).toEqual(original);
    }
    expect(q.nextAvail).toBe(2);
    expect(q.pop()).toBeNull();
    q.pushUsed(b, 0);
    q.pushUsed(a, 0);
    expect(drv.drainUsed().map((u) => u.id)).toEqual([b, a]);
  });

  it('checks the head and the chain as pop() does', () => {
    const drv = new MockSplitDriver({ size: 4 });
    const q = drv.device();
    expect(() => q.restoreInflight(4)).toThrow(VirtqueueError);
    const drv2 = new MockSplitDriver({ size: 4 });
    drv2.setDescriptor(1, { addr: 0xffff_0000n, len: 16 });
    const q2 = drv2.device();
    expect(() => q2.restoreInflight(1)).toThrow(/outside guest memory/);
    expect(q2.broken?.reason).toBe('descriptor-out-of-memory');
  });
});

describe('PackedQueue.descriptorAt and restoreInflight', () => {
  function copies(q: ReturnType<MockPackedDriver['device']>, from: number, n: number): PackedDescriptor[] {
    return Array.from({ length: n }, (_, k) => {
      const d = { addr: 0, len: 0, id: 0, flags: 0 };
      q.descriptorAt((from + k) % q.size, d);
      return d;
    });
  }

  it('rebuilds buffers from descriptor copies after their slots were overwritten by used descriptors', () => {
    const drv = new MockPackedDriver({ size: 4 });
    const q = drv.device();
    const a = drv.add({ readable: [enc('abc')], writable: [2] }); // slots 0, 1
    const b = drv.add({ readable: [enc('xyz')] }); // slot 2
    const chainA = q.pop()!;
    const recordA = copies(q, 0, 2);
    const chainB = q.pop()!;
    expect(recordA.map((d) => d.id)).toEqual([expect.any(Number), a]);
    expect(recordA[0]!.len).toBe(3);
    // b completes first: its used descriptor lands in slot 0, over a's first descriptor.
    q.pushUsed(b, 0);
    expect(drv.getUsed()?.id).toBe(b);
    // The back-end restarts: positions from its records, a restored from the copies.
    const r = drv.device();
    r.nextAvail = 3;
    r.availWrapCounter = 1;
    r.nextUsed = 1;
    r.usedWrapCounter = 1;
    const restored = r.restoreInflight(recordA);
    expect(restored).toEqual(chainA);
    const data = new Uint8Array(3);
    readSegments(drv.memory, restored.readable, data);
    expect(dec(data)).toBe('abc');
    expect(() => r.restoreInflight(recordA)).toThrow(/already in flight/);
    expect(chainB.head).toBe(b);
    r.pushUsed(a, 1);
    expect(drv.getUsed()?.id).toBe(a);
    expect(r.nextUsed).toBe(3);
  });

  it('restores indirect buffers and refuses what popInto refuses', () => {
    const drv = new MockPackedDriver({ size: 4, indirect: true });
    const q = drv.device({ indirect: true });
    const id = drv.add({ readable: [enc('hi')], writable: [4], indirect: true });
    const chain = q.pop()!;
    const record = copies(q, 0, 1);
    const r = drv.device({ indirect: true });
    expect(r.restoreInflight(record)).toEqual(chain);
    expect(chain.head).toBe(id);
    const bad = drv.device({ indirect: true });
    expect(() => bad.restoreInflight([])).toThrow(VirtqueueError);
    expect(() =>
      drv.device({ indirect: true }).restoreInflight([
        { ...record[0]!, id: 9 },
        { ...record[0]!, id: 9 },
      ]),
    ).toThrow(/indirect descriptor inside/);
    expect(() => drv.device().restoreInflight([{ addr: 2 ** 40, len: 8, id: 1, flags: 0 }])).toThrow(
      /outside guest memory/,
    );
    expect(() => q.descriptorAt(4, record[0]!)).toThrow(RangeError);
  });
});
