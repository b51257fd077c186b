import { describe, expect, it } from 'vitest';
import { ChainBuffer, readSegments, writeSegments } from './chain.js';
import { MockPackedDriver } from './testing/index.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe('PackedQueue device side with the packed driver', () => {
  it('pops lists as readable/writable segments and writes used descriptors', () => {
    const drv = new MockPackedDriver({ size: 8 });
    const q = drv.device();
    expect(q.pop()).toBeNull();
    const id = drv.add({ readable: [enc('ping')], writable: [2, 2] });
    const chain = q.pop()!;
    expect(chain.head).toBe(id);
    expect(chain.readable.map((s) => s.len)).toEqual([4]);
    expect(chain.writable.map((s) => s.len)).toEqual([2, 2]);
    const input = new Uint8Array(4);
    readSegments(drv.memory, chain.readable, input);
    expect(dec(input)).toBe('ping');
    writeSegments(drv.memory, chain.writable, enc('pong'));
    q.pushUsed(id, 4);
    expect(q.nextUsed).toBe(3); // skipped over the 3 descriptors of the list
    const used = drv.getUsed()!;
    expect(used).toMatchObject({ id, len: 4 });
    expect(dec(used.written)).toBe('pong');
    expect(drv.getUsed()).toBeNull();
  });

  it('toggles wrap counters across many laps of a ring whose size is not a power of two', () => {
    const drv = new MockPackedDriver({ size: 5 });
    const q = drv.device();
    const chain = new ChainBuffer(1);
    let laps = 0;
    let lastWrap = q.availWrapCounter;
    for (let round = 0; round < 2000; round++) {
      const n = (round % 3) + 1; // lists of 1..3 descriptors
      const ids = [
        drv.add({ readable: [Uint8Array.of(round & 0xff)], writable: n > 1 ? new Array(n - 1).fill(1) : [] }),
      ];
      if (drv.driver.numFree >= 1) ids.push(drv.add({ writable: [1] }));
      const seen: number[] = [];
      while (q.popInto(chain)) {
        seen.push(chain.head);
        chain.write(drv.memory, Uint8Array.of(7));
        q.pushUsed(chain.head, chain.writableLength > 0 ? 1 : 0);
      }
      expect(seen).toEqual(ids);
      expect(drv.drainUsed().map((u) => u.id)).toEqual(ids);
      if (q.availWrapCounter !== lastWrap) {
        laps++;
        lastWrap = q.availWrapCounter;
      }
    }
    expect(laps).toBeGreaterThan(100);
    expect(q.nextUsed).toBe(q.nextAvail);
    expect(q.usedWrapCounter).toBe(q.availWrapCounter);
  });

  it('completes out of order, skipping by each buffer`s list length', () => {
    const drv = new MockPackedDriver({ size: 8 });
    const q = drv.device();
    const a = drv.add({ readable: [enc('a')], writable: [1, 1] });
    const b = drv.add({ readable: [enc('b')] });
    const ca = q.pop()!;
    const cb = q.pop()!;
    q.pushUsed(cb.head, 0);
    q.pushUsed(ca.head, 2);
    expect(drv.drainUsed().map((u) => [u.id, u.len])).toEqual([
      [b, 0],
      [a, 2],
    ]);
    expect(drv.driver.numFree).toBe(8);
    expect(() => q.pushUsed(a, 0)).toThrow(/not in flight/);
  });

  it('follows indirect tables (one ring slot per buffer)', () => {
    const drv = new MockPackedDriver({ size: 4, indirect: true });
    const q = drv.device();
    const id = drv.add({ readable: [enc('in'), enc('put')], writable: [3, 3], indirect: true });
    expect(drv.driver.numFree).toBe(3);
    const c = q.pop()!;
    expect(c.head).toBe(id);
    expect(c.readable.map((s) => s.len)).toEqual([2, 3]);
    expect(c.writable.map((s) => s.len)).toEqual([3, 3]);
    writeSegments(drv.memory, c.writable, enc('output'));
    q.pushUsed(id, 6);
    expect(q.nextUsed).toBe(1);
    expect(dec(drv.getUsed()!.written)).toBe('output');
  });

  it('event suppression: ENABLE / DISABLE flags both ways', () => {
    const drv = new MockPackedDriver({ size: 8 });
    const q = drv.device();
    drv.add({ writable: [1] });
    expect(drv.needsKick()).toBe(true);
    q.disableNotifications();
    drv.add({ writable: [1] });
    expect(drv.needsKick()).toBe(false);
    expect(q.enableNotifications()).toBe(true);
    q.pushUsed(q.pop()!.head, 0);
    expect(q.needsNotification()).toBe(true);
    expect(q.needsNotification()).toBe(false);
    drv.driver.disableInterrupts();
    q.pushUsed(q.pop()!.head, 0);
    expect(q.needsNotification()).toBe(false);
    expect(drv.driver.enableInterrupts()).toBe(true);
    expect(q.enableNotifications()).toBe(false);
  });

  it('event suppression: DESC offsets with wrap counters (EVENT_IDX)', () => {
    const drv = new MockPackedDriver({ size: 4, eventIdx: true });
    const q = drv.device();
    expect(q.enableNotifications()).toBe(false); // wants an event at (0, wrap 1)
    drv.add({ writable: [1] });
    expect(drv.needsKick()).toBe(true);
    drv.add({ writable: [1] });
    expect(drv.needsKick()).toBe(false); // offset 0 already passed
    const a = q.pop()!;
    const b = q.pop()!;
    expect(q.enableNotifications()).toBe(false); // event at (2, wrap 1)
    drv.add({ writable: [1] });
    drv.add({ writable: [1] }); // fills positions 2, 3 and wraps the driver's counter
    expect(drv.needsKick()).toBe(true);
    expect(drv.driver.enableInterrupts()).toBe(false); // used event at (0, wrap 1)
    q.pushUsed(a.head, 1);
    expect(q.needsNotification()).toBe(true);
    q.pushUsed(b.head, 1);
    expect(q.needsNotification()).toBe(false);
    drv.drainUsed();
    expect(drv.driver.enableInterrupts()).toBe(false); // used event at (2, wrap 1)
    const c = q.pop()!;
    const d = q.pop()!;
    q.pushUsed(c.head, 1);
    expect(q.needsNotification()).toBe(true);
    q.pushUsed(d.head, 1);
    expect(q.needsNotification()).toBe(false);
    expect(q.usedWrapCounter).toBe(0);
    drv.drainUsed();
    expect(drv.driver.enableInterrupts()).toBe(false); // (0, wrap 0): next lap
    drv.add({ writable: [1] });
    q.pushUsed(q.pop()!.head, 1);
    expect(q.needsNotification()).toBe(true);
  });

  it('vringBase round-trips the vhost-user packed encoding', () => {
    const drv = new MockPackedDriver({ size: 4 });
    const q = drv.device();
    for (let i = 0; i < 3; i++) drv.add({ writable: [1] });
    q.pushUsed(q.pop()!.head, 0);
    q.pushUsed(q.pop()!.head, 0);
    q.pushUsed(q.pop()!.head, 0);
    drv.drainUsed();
    drv.add({ writable: [1] });
    drv.add({ writable: [1] }); // wraps
    q.pushUsed(q.pop()!.head, 0);
    const base = q.vringBase;
    const q2 = drv.device();
    q2.vringBase = base;
    expect([q2.nextAvail, q2.availWrapCounter, q2.nextUsed, q2.usedWrapCounter]).toEqual([0, 0, 0, 0]);
    const c = q2.pop()!;
    expect(c).not.toBeNull();
  });
});
