import { describe, expect, it } from 'vitest';
import { MockPackedDriver, MockSplitDriver } from './testing/index.js';

describe('driver sides', () => {
  it('split: ENOSPC when descriptors run out, EINVAL for empty buffers or indirect without the feature', () => {
    const drv = new MockSplitDriver({ size: 4 });
    drv.add({ readable: [new Uint8Array(1)], writable: [1, 1] });
    expect(() => drv.add({ writable: [1, 1] })).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
    expect(() => drv.add({})).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => drv.add({ writable: [1], indirect: true })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(drv.inflightCount).toBe(1); // failed adds release their memory and descriptors
    expect(drv.driver.numFree).toBe(1);
  });

  it('split: a used id that is not in flight is EIO (the device is broken, not the driver)', () => {
    const drv = new MockSplitDriver({ size: 4 });
    drv.memory.writeU32(drv.config.deviceArea + 4n, 3); // used[0].id = 3, never offered
    drv.memory.storeReleaseU16(drv.config.deviceArea + 2n, 1);
    expect(() => drv.driver.getUsed()).toThrow(expect.objectContaining({ code: 'EIO' }));
  });

  it('split: free descriptors are recycled through many add/use cycles of mixed chain lengths', () => {
    const drv = new MockSplitDriver({ size: 8 });
    const q = drv.device();
    for (let i = 0; i < 500; i++) {
      const n = 1 + (i % 4);
      drv.add({ readable: [Uint8Array.of(i & 0xff)], writable: new Array(n - 1).fill(1) });
      if (i % 2 === 1 || drv.driver.numFree < 4) {
        for (let c = q.pop(); c; c = q.pop()) q.pushUsed(c.head, 0);
        drv.drainUsed();
      }
    }
    for (let c = q.pop(); c; c = q.pop()) q.pushUsed(c.head, 0);
    drv.drainUsed();
    expect(drv.driver.numFree).toBe(8);
  });

  it('packed: ENOSPC, EIO for a used ID not in flight, ring slots returned by list length', () => {
    const drv = new MockPackedDriver({ size: 4 });
    const id = drv.add({ readable: [new Uint8Array(1)], writable: [1, 1] });
    expect(drv.driver.numFree).toBe(1);
    expect(() => drv.add({ writable: [1, 1] })).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
    const q = drv.device();
    q.pushUsed(q.pop()!.head, 2);
    expect(drv.getUsed()).toMatchObject({ id, len: 2 });
    expect(drv.driver.numFree).toBe(4);
    // A used descriptor (both bits = used wrap 1) at position 3 carrying an unknown ID.
    drv.add({ writable: [1] }); // position 3
    drv.memory.writeU16(drv.config.descTable + 16n * 3n + 12n, 3);
    drv.memory.storeReleaseU16(drv.config.descTable + 16n * 3n + 14n, 0x8080);
    expect(() => drv.driver.getUsed()).toThrow(expect.objectContaining({ code: 'EIO' }));
  });

  it('packed: needsKick is false when nothing was added since the last decision', () => {
    const drv = new MockPackedDriver({ size: 4 });
    expect(drv.needsKick()).toBe(false);
    drv.add({ writable: [1] });
    expect(drv.needsKick()).toBe(true);
    expect(drv.needsKick()).toBe(false);
  });
});
