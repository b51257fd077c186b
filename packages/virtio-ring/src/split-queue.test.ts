import { describe, expect, it } from 'vitest';
import { ChainBuffer, readSegments, writeSegments } from './chain.js';
import { MockSplitDriver } from './testing/index.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe('SplitQueue device side with the split driver', () => {
  it('pops chains as readable/writable segments and returns used entries', () => {
    const drv = new MockSplitDriver({ size: 8 });
    const q = drv.device();
    expect(q.pop()).toBeNull();
    const id = drv.add({ readable: [enc('hello '), enc('world')], writable: [4, 8] });
    const chain = q.pop()!;
    expect(chain.head).toBe(id);
    expect(chain.readable.map((s) => s.len)).toEqual([6, 5]);
    expect(chain.writable.map((s) => s.len)).toEqual([4, 8]);
    expect(chain.readableLength).toBe(11);
    expect(chain.writableLength).toBe(12);
    const input = new Uint8Array(chain.readableLength);
    expect(readSegments(drv.memory, chain.readable, input)).toBe(11);
    expect(dec(input)).toBe('hello world');
    expect(writeSegments(drv.memory, chain.writable, enc('HELLO WORLD'))).toBe(11);
    q.pushUsed(chain.head, 11);
    expect(q.pop()).toBeNull();
    const used = drv.getUsed()!;
    expect(used.id).toBe(id);
    expect(used.len).toBe(11);
    expect(dec(used.written)).toBe('HELLO WORLD');
    expect(drv.getUsed()).toBeNull();
    expect(drv.driver.numFree).toBe(8);
  });

  it('wraps the 16-bit indices and the ring many times', () => {
    const drv = new MockSplitDriver({ size: 8 });
    const q = drv.device();
    const chain = new ChainBuffer(1);
    const rounds = 23_334; // 70,002 chains: the u16 indices wrap once
    for (let round = 0; round < rounds; round++) {
      const ids = [0, 1, 2].map((i) =>
        drv.add({ readable: [Uint8Array.of(round & 0xff, i)], writable: [1] }),
      );
      const seen: number[] = [];
      while (q.popInto(chain)) {
        const b = new Uint8Array(2);
        chain.read(drv.memory, b);
        expect(b[0]).toBe(round & 0xff);
        chain.write(drv.memory, Uint8Array.of(b[1]! + 100));
        seen.push(chain.head);
        q.pushUsed(chain.head, 1);
      }
      expect(seen).toEqual(ids);
      const used = drv.drainUsed();
      expect(used.map((u) => u.written[0])).toEqual([100, 101, 102]);
    }
    expect(q.nextAvail).toBe(q.nextUsed);
    expect(q.nextAvail).toBe((3 * rounds) & 0xffff);
  });

  it('follows indirect tables', () => {
    const drv = new MockSplitDriver({ size: 4, indirect: true });
    const q = drv.device();
    const id = drv.add({ readable: [enc('a'), enc('bc')], writable: [3, 5], indirect: true });
    expect(drv.driver.numFree).toBe(3); // one ring slot for the whole buffer
    const chain = q.pop()!;
    expect(chain.head).toBe(id);
    expect(chain.readable.map((s) => s.len)).toEqual([1, 2]);
    expect(chain.writable.map((s) => s.len)).toEqual([3, 5]);
    writeSegments(drv.memory, chain.writable, enc('xyzuvw'));
    q.pushUsed(id, 6);
    expect(dec(drv.getUsed()!.written)).toBe('xyzuvw');
  });

  it('drain() hands out one reused ChainBuffer', () => {
    const drv = new MockSplitDriver({ size: 8 });
    const q = drv.device();
    for (let i = 0; i < 5; i++) drv.add({ readable: [new Uint8Array(i + 1)] });
    const seen = new Set<ChainBuffer>();
    const lens: number[] = [];
    expect(
      q.drain((c) => {
        seen.add(c);
        lens.push(c.readableLength);
        q.pushUsed(c.head, 0);
      }, 4),
    ).toBe(4);
    expect(seen.size).toBe(1);
    expect(lens).toEqual([1, 2, 3, 4]);
    expect(q.drain(() => {})).toBe(1);
  });

  it('suppresses kicks with VIRTQ_USED_F_NO_NOTIFY and interrupts with VIRTQ_AVAIL_F_NO_INTERRUPT', () => {
    const drv = new MockSplitDriver({ size: 8 });
    const q = drv.device();
    drv.add({ writable: [1] });
    expect(drv.needsKick()).toBe(true);
    q.disableNotifications();
    drv.add({ writable: [1] });
    expect(drv.needsKick()).toBe(false);
    expect(q.enableNotifications()).toBe(true); // buffers are waiting
    drv.add({ writable: [1] });
    expect(drv.needsKick()).toBe(true);
    const c = q.pop()!;
    q.pushUsed(c.head, 0);
    expect(q.needsNotification()).toBe(true);
    expect(q.needsNotification()).toBe(false); // nothing new since
    drv.driver.disableInterrupts();
    q.pushUsed(q.pop()!.head, 0);
    expect(q.needsNotification()).toBe(false);
    expect(drv.driver.enableInterrupts()).toBe(true);
    q.pushUsed(q.pop()!.head, 0);
    expect(q.needsNotification()).toBe(true);
    expect(q.enableNotifications()).toBe(false);
  });

  it('applies vring_need_event with EVENT_IDX in both directions', () => {
    const drv = new MockSplitDriver({ size: 8, eventIdx: true });
    const q = drv.device();
    q.enableNotifications(); // avail_event = 0: kick on the first buffer only
    drv.add({ writable: [1] });
    expect(drv.needsKick()).toBe(true);
    drv.add({ writable: [1] });
    expect(drv.needsKick()).toBe(false); // avail_event still 0, already crossed
    // Device pops both and asks to hear about avail index 2 onward.
    const a = q.pop()!;
    const b = q.pop()!;
    expect(q.enableNotifications()).toBe(false);
    drv.add({ writable: [1] });
    expect(drv.needsKick()).toBe(true);
    // Interrupts: driver wants one when used idx passes used_event = lastUsed (0).
    expect(drv.driver.enableInterrupts()).toBe(false);
    q.pushUsed(a.head, 1);
    expect(q.needsNotification()).toBe(true); // first decision is always true
    q.pushUsed(b.head, 1);
    expect(q.needsNotification()).toBe(false); // used_event 0 already passed
    expect(drv.drainUsed()).toHaveLength(2);
    expect(drv.driver.enableInterrupts()).toBe(false); // used_event = 2
    q.pushUsed(q.pop()!.head, 1);
    expect(q.needsNotification()).toBe(true);
    drv.driver.disableInterrupts();
    drv.drainUsed();
    drv.add({ writable: [1] });
    q.pushUsed(q.pop()!.head, 1);
    expect(q.needsNotification()).toBe(false);
  });

  it('nextAvail / nextUsed can be saved and restored (vhost-user VRING_BASE)', () => {
    const drv = new MockSplitDriver({ size: 8 });
    const q1 = drv.device();
    for (let i = 0; i < 3; i++) drv.add({ writable: [1] });
    q1.pushUsed(q1.pop()!.head, 0);
    const q2 = drv.device();
    q2.nextAvail = q1.nextAvail;
    q2.nextUsed = q1.nextUsed;
    const c = q2.pop()!;
    q2.pushUsed(c.head, 0);
    expect(drv.drainUsed().map((u) => u.id)).toEqual([0, 1]);
  });

  it('addUsed batches used elements behind one used-index store (publishUsed / needsNotification)', () => {
    const drv = new MockSplitDriver({ size: 8 });
    const q = drv.device();
    for (let i = 0; i < 3; i++) drv.add({ writable: [1] });
    const heads = [q.pop()!.head, q.pop()!.head, q.pop()!.head];
    q.addUsed(heads[0]!, 1);
    q.addUsed(heads[1]!, 1);
    expect(drv.getUsed()).toBeNull(); // not published yet
    q.publishUsed();
    expect(drv.drainUsed().map((u) => u.id)).toEqual(heads.slice(0, 2));
    q.addUsed(heads[2]!, 1);
    expect(q.needsNotification()).toBe(true); // publishes, then decides
    expect(drv.drainUsed().map((u) => u.id)).toEqual([heads[2]]);
  });
});
