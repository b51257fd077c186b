import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RangeAllocator } from './allocator.js';

describe('RangeAllocator (the mock guest kmalloc)', () => {
  it('never hands out overlapping ranges and merges everything back', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 300 }), fc.nat()), { maxLength: 200 }),
        (ops) => {
          const heap = new RangeAllocator(0x1000, 0x1000 + 8192);
          const live = new Map<number, number>();
          for (const [isAlloc, len, pick] of ops) {
            if (isAlloc || live.size === 0) {
              let at: number;
              try {
                at = heap.alloc(len);
              } catch {
                continue; // full: fine
              }
              expect(at % 16).toBe(0);
              expect(at).toBeGreaterThanOrEqual(0x1000);
              expect(at + len).toBeLessThanOrEqual(0x1000 + 8192);
              for (const [a, l] of live) expect(at + len <= a || a + l <= at).toBe(true);
              live.set(at, len);
            } else {
              const keys = [...live.keys()];
              const at = keys[pick % keys.length]!;
              heap.free(at);
              live.delete(at);
            }
          }
          for (const at of live.keys()) heap.free(at);
          expect(heap.used).toBe(0);
          expect(heap.alloc(8192)).toBe(0x1000); // one hole again
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects freeing what it did not allocate', () => {
    const heap = new RangeAllocator(0, 4096);
    expect(() => heap.free(16)).toThrow(/unallocated/);
  });
});
