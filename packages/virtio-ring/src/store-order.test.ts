/**
 * The used index (split) and used descriptor flags (packed) go out by a plain store where stores
 * are visible in order (x86) and by Atomics.store elsewhere: both paths publish the same elements
 * at the same calls, and the notification decision (behind its own fence) is the same.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';

async function load(inOrder: boolean) {
  vi.resetModules();
  vi.doMock('./store-order.js', () => ({ STORES_VISIBLE_IN_ORDER: inOrder }));
  expect((await import('./store-order.js')).STORES_VISIBLE_IN_ORDER).toBe(inOrder);
  return import('./testing/index.js');
}

afterEach(() => {
  vi.doUnmock('./store-order.js');
  vi.resetModules();
});

describe.each([true, false])('split used index (stores visible in order: %s)', (inOrder) => {
  it('pushUsed publishes each element; addUsed waits for publishUsed or needsNotification', async () => {
    const { MockSplitDriver } = await load(inOrder);
    const drv = new MockSplitDriver({ size: 8, eventIdx: false });
    const q = drv.device();
    drv.driver.enableInterrupts();
    for (let i = 0; i < 4; i++) drv.add({ writable: [16] });
    const heads: number[] = [];
    for (let c = q.pop(); c; c = q.pop()) heads.push(c.head);
    expect(heads).toHaveLength(4);

    q.pushUsed(heads[0]!, 1);
    expect(drv.drainUsed().map((u) => u.id)).toEqual([heads[0]]);
    q.addUsed(heads[1]!, 2);
    q.addUsed(heads[2]!, 3);
    expect(drv.drainUsed()).toEqual([]);
    q.publishUsed();
    expect(drv.drainUsed().map((u) => [u.id, u.len])).toEqual([
      [heads[1], 2],
      [heads[2], 3],
    ]);
    expect(q.needsNotification()).toBe(true); // interrupts on, elements used since the last decision
    expect(q.needsNotification()).toBe(false); // nothing new
    q.addUsed(heads[3]!, 4);
    expect(q.needsNotification()).toBe(true); // publishes first
    expect(drv.drainUsed().map((u) => u.id)).toEqual([heads[3]]);
    expect(q.nextUsed).toBe(4);
  });

  it('event idx: a published index still takes the notification decision', async () => {
    const { MockSplitDriver } = await load(inOrder);
    const drv = new MockSplitDriver({ size: 8, eventIdx: true });
    const q = drv.device();
    drv.driver.enableInterrupts();
    drv.add({ writable: [16] });
    drv.add({ writable: [16] });
    const a = q.pop()!;
    q.pushUsed(a.head, 1);
    expect(q.needsNotification()).toBe(true); // the first decision always notifies
    drv.drainUsed();
    drv.driver.enableInterrupts(); // used_event = what the driver has seen
    const b = q.pop()!;
    q.pushUsed(b.head, 1); // published before the decision: the decision must still see it
    expect(q.needsNotification()).toBe(true);
  });
});

describe.each([true, false])('packed used descriptors (stores visible in order: %s)', (inOrder) => {
  it('pushUsed publishes each buffer; the notification decision follows the driver', async () => {
    const { MockPackedDriver } = await load(inOrder);
    const drv = new MockPackedDriver({ size: 8, eventIdx: false });
    const q = drv.device();
    drv.driver.enableInterrupts();
    for (let i = 0; i < 3; i++) drv.add({ writable: [16] });
    const ids: number[] = [];
    for (let c = q.pop(); c; c = q.pop()) ids.push(c.head);
    expect(ids).toHaveLength(3);
    q.pushUsed(ids[0]!, 5);
    expect(drv.drainUsed().map((u) => [u.id, u.len])).toEqual([[ids[0], 5]]);
    expect(q.needsNotification()).toBe(true);
    drv.driver.disableInterrupts();
    q.addUsed(ids[1]!, 6); // packed: published at once
    expect(drv.drainUsed().map((u) => u.id)).toEqual([ids[1]]);
    expect(q.needsNotification()).toBe(false); // the driver disabled interrupts
    drv.driver.enableInterrupts();
    q.pushUsed(ids[2]!, 7);
    expect(q.needsNotification()).toBe(true);
    expect(drv.drainUsed().map((u) => u.id)).toEqual([ids[2]]);
  });
});
