import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ChainBuffer,
  GuestMemory,
  PackedQueue,
  type QueueConfig,
  readSegments,
  SplitQueue,
  type Virtqueue,
  VirtqueueError,
  vringNeedEvent,
  writeSegments,
} from '../src/index.js';
import { MockPackedDriver, MockSplitDriver } from '../src/testing/index.js';
import { type ModelResult, modelPacked, modelSplit } from './model.js';

const BASE = 0x10000n;
const RAM = 0x10000;
const TABLES = [0x11000n, 0x11400n];

/** Guest addresses a hostile driver would pick: inside, at edges, outside, wrapping. */
const addrArb = fc.oneof(
  { weight: 6, arbitrary: fc.bigInt(0x12000n, 0x1ff00n) },
  { weight: 2, arbitrary: fc.constantFrom(...TABLES) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(0n, 0xfff0n, 0x1fff8n, 0x20000n, 1n << 53n, 0xffff_ffff_ffff_fff0n),
  },
  { weight: 1, arbitrary: fc.bigInt(0n, (1n << 64n) - 1n) },
);
const lenArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 0x100 }) },
  { weight: 2, arbitrary: fc.constantFrom(0, 8, 16, 24, 32, 48, 64) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff_ffff }) },
);

interface RawDesc {
  addr: bigint;
  len: number;
  flags: number;
  next: number;
  id: number;
}
const descArb = (flagsArb: fc.Arbitrary<number>, nextMax: number) =>
  fc.record({
    addr: addrArb,
    len: lenArb,
    flags: flagsArb,
    next: fc.integer({ min: 0, max: nextMax }),
    id: fc.integer({ min: 0, max: 7 }),
  });

function freshMemory(): GuestMemory {
  return new GuestMemory([{ guestPhysAddr: BASE, bytes: new Uint8Array(RAM) }]);
}

function writeDesc(mem: GuestMemory, at: bigint, d: RawDesc, packed: boolean): void {
  mem.writeU64(at, d.addr);
  mem.writeU32(at + 8n, d.len);
  if (packed) {
    mem.writeU16(at + 12n, d.id);
    mem.writeU16(at + 14n, d.flags);
  } else {
    mem.writeU16(at + 12n, d.flags);
    mem.writeU16(at + 14n, d.next);
  }
}

/** Pops until empty or error, returning the same shape as the model. */
function run(q: Virtqueue, max: number): ModelResult {
  const chains: ModelResult['chains'] = [];
  try {
    for (let n = 0; n < max; n++) {
      const c = q.pop();
      if (!c) break;
      chains.push({
        head: c.head,
        readable: c.readable.map((s) => [s.addr, s.len]),
        writable: c.writable.map((s) => [s.addr, s.len]),
      });
    }
    return { chains };
  } catch (error) {
    if (!(error instanceof VirtqueueError)) throw error;
    return { chains, error: error.reason };
  }
}

const featuresArb = fc.record({ indirect: fc.boolean(), strictOrder: fc.boolean(), eventIdx: fc.boolean() });

describe('random rings against the reference model', () => {
  it('split: same chains or the same typed error, never another exception', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1, 2, 4, 8),
        featuresArb,
        fc.array(descArb(fc.integer({ min: 0, max: 7 }), 9), { minLength: 8, maxLength: 8 }),
        fc.array(descArb(fc.integer({ min: 0, max: 7 }), 5), { minLength: 8, maxLength: 8 }),
        fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 8, maxLength: 8 }),
        fc.integer({ min: 0, max: 10 }),
        (size, features, descs, tableDescs, heads, availIdx) => {
          const mem = freshMemory();
          const cfg: QueueConfig = {
            size,
            descTable: BASE,
            driverArea: BASE + 0x200n,
            deviceArea: BASE + 0x400n,
            ...features,
          };
          descs.slice(0, size).forEach((d, i) => {
            writeDesc(mem, cfg.descTable + BigInt(16 * i), d, false);
          });
          tableDescs.forEach((d, i) => {
            writeDesc(mem, TABLES[i >> 2]! + BigInt(16 * (i & 3)), d, false);
          });
          heads.slice(0, size).forEach((h, i) => {
            mem.writeU16(cfg.driverArea + 4n + BigInt(2 * i), h);
          });
          mem.writeU16(cfg.driverArea + 2n, availIdx);
          const expected = modelSplit(mem, cfg, size);
          const actual = run(new SplitQueue(mem, cfg), size + 1);
          expect(actual).toEqual(expected);
          for (const c of actual.chains) {
            for (const [a, l] of [...c.readable, ...c.writable]) expect(mem.isValidRange(a, l)).toBe(true);
          }
        },
      ),
      { numRuns: 3000 },
    );
  }, 120_000);

  it('packed: same lists or the same typed error, never another exception', () => {
    const AV = 1 << 7;
    const US = 1 << 15;
    const flagsArb = fc
      .tuple(fc.integer({ min: 0, max: 7 }), fc.constantFrom(AV, AV, AV, AV | US, 0, US))
      .map(([low, lap]) => low | lap);
    fc.assert(
      fc.property(
        fc.constantFrom(1, 2, 3, 4, 5, 8),
        featuresArb,
        fc.array(descArb(flagsArb, 0), { minLength: 8, maxLength: 8 }),
        fc.array(descArb(fc.integer({ min: 0, max: 7 }), 0), { minLength: 8, maxLength: 8 }),
        (size, features, descs, tableDescs) => {
          const mem = freshMemory();
          const cfg: QueueConfig = {
            size,
            descTable: BASE,
            driverArea: BASE + 0x200n,
            deviceArea: BASE + 0x400n,
            ...features,
          };
          descs.slice(0, size).forEach((d, i) => {
            writeDesc(mem, cfg.descTable + BigInt(16 * i), d, true);
          });
          tableDescs.forEach((d, i) => {
            writeDesc(mem, TABLES[i >> 2]! + BigInt(16 * (i & 3)), d, true);
          });
          const expected = modelPacked(mem, cfg, size);
          const actual = run(new PackedQueue(mem, cfg), size);
          expect(actual).toEqual(expected);
        },
      ),
      { numRuns: 3000 },
    );
  }, 120_000);
});

/** A random workload: buffers of random shapes, completed in a random order. */
const bufferArb = fc.record({
  readable: fc.array(fc.uint8Array({ minLength: 0, maxLength: 40 }), { maxLength: 3 }),
  writable: fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 3 }),
  indirect: fc.boolean(),
});

describe('driver ↔ device round trips', () => {
  for (const kind of ['split', 'packed'] as const) {
    it(`${kind}: every buffer comes back once, with its data, in any completion order`, () => {
      fc.assert(
        fc.property(
          fc.constantFrom(...(kind === 'split' ? [2, 4, 8, 16] : [2, 3, 5, 8, 16])),
          fc.boolean(),
          fc.array(bufferArb, { minLength: 1, maxLength: 60 }),
          fc.infiniteStream(fc.nat()),
          (size, eventIdx, buffers, picks) => {
            const opts = { size, eventIdx, indirect: true, memoryBytes: 1 << 18 };
            const drv = kind === 'split' ? new MockSplitDriver(opts) : new MockPackedDriver(opts);
            const q: Virtqueue = drv.device();
            const pending: { head: number; out: Uint8Array }[] = [];
            const expected = new Map<number, { input: Uint8Array; out: Uint8Array }>();
            const pick = picks[Symbol.iterator]();
            const chain = new ChainBuffer(1);
            let queued = 0;
            let done = 0;
            const complete = () => {
              const i = pick.next().value! % pending.length;
              const [p] = pending.splice(i, 1);
              q.pushUsed(p!.head, p!.out.byteLength);
              q.needsNotification();
            };
            for (const b of buffers) {
              if (b.readable.length + b.writable.length === 0) continue;
              if (!b.indirect && b.readable.length + b.writable.length > size) b.indirect = true;
              const slots = b.indirect ? 1 : b.readable.length + b.writable.length;
              while (drv.driver.numFree < slots) {
                if (pending.length > 0) complete();
                for (const u of drv.drainUsed()) {
                  const e = expected.get(u.id)!;
                  expect(u.written).toEqual(e.out);
                  expected.delete(u.id);
                  done++;
                }
              }
              const id = drv.add(b);
              const input = concat(b.readable);
              const cap = b.writable.reduce((n, x) => n + x, 0);
              const out = input.map((x) => x ^ 0x5a).subarray(0, cap);
              expect(expected.has(id)).toBe(false);
              expected.set(id, { input, out });
              queued++;
              while (q.popInto(chain)) {
                const e = expected.get(chain.head)!;
                const got = new Uint8Array(chain.readableLength);
                chain.read(drv.memory, got);
                expect(got).toEqual(e.input);
                expect(chain.write(drv.memory, e.out)).toBe(e.out.byteLength);
                pending.push({ head: chain.head, out: e.out });
              }
            }
            while (pending.length > 0) complete();
            for (const u of drv.drainUsed()) {
              expect(u.written).toEqual(expected.get(u.id)!.out);
              expected.delete(u.id);
              done++;
            }
            expect(expected.size).toBe(0);
            expect(done).toBe(queued);
            expect(drv.driver.numFree).toBe(size);
            expect(drv.inflightCount).toBe(0);
          },
        ),
        { numRuns: 300 },
      );
    }, 120_000);
  }

  it('readSegments / writeSegments agree with ChainBuffer.read / write at any offset', () => {
    fc.assert(
      fc.property(bufferArb, fc.nat({ max: 130 }), fc.uint8Array({ maxLength: 130 }), (b, skip, data) => {
        const drv = new MockSplitDriver({ size: 8, indirect: true });
        if (b.readable.length + b.writable.length === 0) return;
        drv.add(b);
        const q = drv.device();
        const chain = new ChainBuffer(1);
        expect(q.popInto(chain)).toBe(true);
        const c = chain.toDescriptorChain();
        const x = new Uint8Array(64);
        const y = new Uint8Array(64);
        expect(readSegments(drv.memory, c.readable, x, skip)).toBe(chain.read(drv.memory, y, skip));
        expect(x).toEqual(y);
        const n = writeSegments(drv.memory, c.writable, data, skip);
        expect(n).toBe(Math.max(0, Math.min(data.byteLength, chain.writableLength - skip)));
      }),
      { numRuns: 500 },
    );
  }, 60_000);
});

describe('vring_need_event', () => {
  it('is true exactly when event_idx is among the indices moved past: old <= event < new (mod 2^16)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff }),
        (ev, old, moved) => {
          const now = (old + moved) & 0xffff;
          const inWindow = ((ev - old) & 0xffff) < moved;
          expect(vringNeedEvent(ev, now, old)).toBe(inWindow);
        },
      ),
      { numRuns: 5000 },
    );
  });
});

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}
