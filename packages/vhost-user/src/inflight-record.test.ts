// The inflight region (vhost-user.rst "Inflight I/O tracking"): its layout byte for byte, and
// recovery from a record cut at every store. A crash is simulated by a store budget: every store
// into the record and every store of the ring that the driver or a recovery can see (a used
// element, the used index, a packed used descriptor) spends one unit, and the store that finds the
// budget empty throws instead of happening. Whatever the cut, the restarted back-end must serve
// exactly the chains the driver has not got back, the ones it had popped first and in pop order,
// and the driver must get every chain back exactly once.
import { closeSync, fstatSync } from 'node:fs';
import { F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK, getSeals } from '@rxvmm/sys';
import {
  type DescriptorChain,
  PackedQueue,
  readSegments,
  SplitQueue,
  type Virtqueue,
} from '@rxvmm/virtio-ring';
import { MockPackedDriver, MockSplitDriver } from '@rxvmm/virtio-ring/testing';
import { describe, expect, it } from 'vitest';
import {
  createInflightFd,
  INFLIGHT_VERSION,
  InflightRegion,
  inflightQueueBytes,
  type RegionViews,
} from './inflight-region.js';
import { decodeInflight, encodeInflight } from './message.js';
import { PackedInflightQueue, PackedInflightRecord } from './packed-inflight.js';
import { SplitInflightQueue, SplitInflightRecord } from './split-inflight.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe('the region and its messages', () => {
  it('one queue region holds either layout for the queue size, 64-byte aligned', () => {
    expect(inflightQueueBytes(128)).toBe(4160); // 32 + 32 * 128 = 4128, rounded up to 64
    expect(inflightQueueBytes(1)).toBe(64);
    expect(inflightQueueBytes(256) % 64).toBe(0);
  });

  it('GET_INFLIGHT_FD makes a zeroed memfd of num_queues regions, sealed against resizing', () => {
    const { fd, mmapSize } = createInflightFd(2, 128);
    try {
      expect(mmapSize).toBe(2 * 4160);
      expect(fstatSync(fd).size).toBe(mmapSize);
      expect(getSeals(fd) & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)).toBe(
        F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL,
      );
    } finally {
      closeSync(fd);
    }
  });

  it('VhostUserInflight is u64 mmap size, u64 offset, u16 queues, u16 queue size, padded to 24', () => {
    const bytes = encodeInflight({ mmapSize: 0x1234n, mmapOffset: 64n, numQueues: 3, queueSize: 256 });
    expect(bytes.length).toBe(24);
    const v = new DataView(bytes.buffer);
    expect([
      v.getBigUint64(0, true),
      v.getBigUint64(8, true),
      v.getUint16(16, true),
      v.getUint16(18, true),
    ]).toEqual([0x1234n, 64n, 3, 256]);
    expect(decodeInflight(bytes)).toEqual({
      mmapSize: 0x1234n,
      mmapOffset: 64n,
      numQueues: 3,
      queueSize: 256,
      size: 24,
    });
    expect(
      encodeInflight({ mmapSize: 1n, mmapOffset: 0n, numQueues: 1, queueSize: 8, size: 20 }).length,
    ).toBe(20);
  });

  it('split records are QueueRegionSplit / DescStateSplit at the offsets of the spec', () => {
    const region = InflightRegion.over(new ArrayBuffer(inflightQueueBytes(8)), 1, 8);
    const views = region.queueViews(0);
    const at = new DataView(views.u8.buffer, views.u8.byteOffset);
    const record = new SplitInflightRecord(views, 8);
    record.initialize(5);
    expect(at.getBigUint64(0, true)).toBe(0n); // features
    expect(at.getUint16(8, true)).toBe(INFLIGHT_VERSION); // version
    expect(at.getUint16(10, true)).toBe(8); // desc_num
    expect(at.getUint16(14, true)).toBe(5); // used_idx
    record.popped(3);
    record.popped(6);
    const desc = (i: number) => 16 + 16 * i;
    expect(at.getUint8(desc(3))).toBe(1); // inflight
    expect(at.getBigUint64(desc(3) + 8, true)).toBe(0n); // counter
    expect(at.getBigUint64(desc(6) + 8, true)).toBe(1n);
    record.used(6);
    record.used(3);
    expect(at.getUint16(12, true)).toBe(3); // last_batch_head
    expect(at.getUint16(desc(3) + 6, true)).toBe(6); // next: the batch as a list
    record.cleared(6);
    record.cleared(3);
    record.setUsedIdx(7);
    expect([at.getUint8(desc(3)), at.getUint8(desc(6)), at.getUint16(14, true)]).toEqual([0, 0, 7]);
  });

  it('packed records are QueueRegionPacked / DescStatePacked at the offsets of the spec', () => {
    const drv = new MockPackedDriver({ size: 4 });
    const q = drv.device();
    const region = InflightRegion.over(new ArrayBuffer(inflightQueueBytes(4)), 1, 4);
    const views = region.queueViews(0);
    const at = new DataView(views.u8.buffer, views.u8.byteOffset);
    const record = new PackedInflightRecord(views, 4);
    record.initialize(0, 1);
    expect(at.getUint16(8, true)).toBe(INFLIGHT_VERSION);
    expect(at.getUint16(10, true)).toBe(4); // desc_num
    expect([at.getUint16(12, true), at.getUint16(14, true)]).toEqual([0, 0]); // free_head, old_free_head
    expect([at.getUint16(16, true), at.getUint16(18, true)]).toEqual([0, 0]); // used_idx, old_used_idx
    expect([at.getUint8(20), at.getUint8(21)]).toEqual([1, 1]); // wrap counters
    const desc = (j: number) => 32 + 32 * j;
    expect([0, 1, 2, 3].map((j) => at.getUint16(desc(j) + 2, true))).toEqual([1, 2, 3, 4]); // the free list
    const id = drv.add({ readable: [enc('abcd')], writable: [16] }); // two descriptors
    q.pop();
    const e = record.popped(q, 0, 2);
    expect(e).toBe(0);
    expect(at.getUint8(desc(0))).toBe(1); // inflight
    expect(at.getUint16(desc(0) + 4, true)).toBe(1); // last
    expect(at.getUint16(desc(0) + 6, true)).toBe(2); // num
    expect(at.getBigUint64(desc(0) + 8, true)).toBe(0n); // counter
    expect(at.getUint32(desc(0) + 20, true)).toBe(4); // len of the first descriptor
    expect(at.getUint16(desc(1) + 16, true)).toBe(id); // id (in the last descriptor)
    expect(at.getUint16(desc(1) + 18, true) & 2).toBe(2); // flags: WRITE
    expect(at.getUint32(desc(1) + 20, true)).toBe(16);
    expect(Number(at.getBigUint64(desc(1) + 24, true))).toBeGreaterThan(0); // addr
    expect([at.getUint16(12, true), at.getUint16(14, true)]).toEqual([2, 2]); // free_head, old_free_head
    record.usedBegin(e, 4);
    q.pushUsed(id, 0);
    record.usedEnd(e);
    expect(at.getUint8(desc(0))).toBe(0);
    expect([at.getUint16(12, true), at.getUint16(14, true)]).toEqual([0, 0]); // entries back in the free list
    expect([at.getUint16(16, true), at.getUint16(18, true)]).toEqual([2, 2]); // used_idx moved by num
    expect(at.getUint16(desc(1) + 2, true)).toBe(2); // last entry links to the old free head
  });
});

/** Thrown by a store the budget does not allow: the process died just before it. */
class Crash extends Error {}

class Budget {
  stores = 0;
  constructor(private left = Number.POSITIVE_INFINITY) {}
  spend(): void {
    if (this.left <= 0) throw new Crash('crash');
    this.left--;
    this.stores++;
  }
}

/** Views whose every store spends one unit of `budget` first. */
function budgetedViews(views: RegionViews, budget: Budget): RegionViews {
  const wrap = <T extends Uint8Array | Uint16Array | Uint32Array>(a: T): T =>
    new Proxy(a, {
      set(target, key, value) {
        budget.spend();
        return Reflect.set(target, key, value);
      },
      get(target, key) {
        const v = Reflect.get(target, key, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  return { u8: wrap(views.u8), u16: wrap(views.u16), u32: wrap(views.u32) };
}

/** A split ring whose visible stores (used elements, the used index) spend the budget. */
class BudgetedSplitQueue extends SplitQueue {
  budget = new Budget();
  override addUsed(head: number, len: number): void {
    this.budget.spend();
    super.addUsed(head, len);
  }
  override publishUsed(): void {
    this.budget.spend();
    super.publishUsed();
  }
}

/** A packed ring whose used-descriptor stores spend the budget. */
class BudgetedPackedQueue extends PackedQueue {
  budget = new Budget();
  override pushUsed(id: number, len: number): void {
    this.budget.spend();
    super.pushUsed(id, len);
  }
}

type Step =
  | { op: 'add'; tag: string; writable: number[] }
  | { op: 'pop' }
  | { op: 'used'; nth: number }
  | { op: 'publish' }
  | { op: 'reap' };

/**
 * The driver and device of one run: chains are named by a tag in their readable bytes, so a
 * head reused by the driver is still a different chain.
 */
interface Harness {
  add(tag: string, writable: number[]): void;
  reap(): void;
  /** Popped and not used yet, in pop order. */
  popped: { head: number; tag: string }[];
  /** Every chain popped, in pop order. */
  order: string[];
  outstanding: Map<number, string>;
  delivered: string[];
}

function makeHarness(drv: MockSplitDriver | MockPackedDriver): Harness {
  const h: Harness = {
    popped: [],
    order: [],
    outstanding: new Map(),
    delivered: [],
    add(tag, writable) {
      const id = drv.add({ readable: [enc(tag)], writable });
      expect(h.outstanding.has(id)).toBe(false);
      h.outstanding.set(id, tag);
    },
    reap() {
      for (let u = drv.getUsed(); u; u = drv.getUsed()) {
        const tag = h.outstanding.get(u.id);
        if (tag === undefined) throw new Error(`used id ${u.id} is not outstanding (a chain used twice)`);
        h.outstanding.delete(u.id);
        h.delivered.push(tag);
      }
    },
  };
  return h;
}

function tagOf(drv: MockSplitDriver | MockPackedDriver, chain: DescriptorChain): string {
  const bytes = new Uint8Array(chain.readableLength);
  readSegments(drv.memory, chain.readable, bytes);
  return dec(bytes);
}

/** Runs `steps` on the tracked queue until done or the crash. Returns whether it crashed. */
/** The step a run was at when it stopped (for failure messages). */
let lastStep = -1;
function runSteps(steps: Step[], h: Harness, drv: MockSplitDriver | MockPackedDriver, q: Virtqueue): boolean {
  try {
    for (const s of steps) {
      lastStep = steps.indexOf(s);
      if (s.op === 'add') h.add(s.tag, s.writable);
      else if (s.op === 'reap') h.reap();
      else if (s.op === 'pop') {
        const chain = q.pop();
        if (chain === null) throw new Error('script pops an empty ring');
        const tag = tagOf(drv, chain);
        h.popped.push({ head: chain.head, tag });
        h.order.push(tag);
      } else if (s.op === 'used') {
        const target = h.popped.splice(s.nth, 1)[0];
        if (!target) throw new Error('script uses a chain never popped');
        q.addUsed(target.head, 0);
      } else {
        q.needsNotification();
      }
    }
    return false;
  } catch (error) {
    if (error instanceof Crash) return true;
    throw error;
  }
}

/**
 * After the crash: what a restarted back-end serves, in order, and the final check that the
 * driver got every chain exactly once.
 */
function restartAndFinish(
  h: Harness,
  drv: MockSplitDriver | MockPackedDriver,
  q: SplitInflightQueue | PackedInflightQueue,
  why: string,
): void {
  h.reap(); // what the driver can see published before the crash
  const rq = q.queue as unknown as {
    nextAvail: number;
    nextUsed: number;
    availWrapCounter?: number;
    usedWrapCounter?: number;
  };
  why += ` resumed avail ${rq.nextAvail}/${rq.availWrapCounter} used ${rq.nextUsed}/${rq.usedWrapCounter} resubmits ${q.resubmitsLeft}`;
  const waiting = [...h.outstanding.values()];
  const poppedBefore = h.order.filter((tag) => waiting.includes(tag));
  const served: DescriptorChain[] = [];
  for (let c = q.pop(); c; c = q.pop()) served.push(c);
  const tags = served.map((c) => tagOf(drv, c));
  // Exactly the chains the driver is waiting for, each once; the ones popped before the crash first, in pop order.
  expect([...tags].sort(), why).toEqual(waiting.sort());
  expect(tags.slice(0, poppedBefore.length), why).toEqual(poppedBefore);
  for (const c of served.reverse()) q.addUsed(c.head, 0);
  q.needsNotification();
  h.reap();
  expect(h.outstanding.size, why).toBe(0);
}

// Out of order, with reused heads and (packed) ring laps, lists of several descriptors.
const SCRIPT: Step[] = [
  { op: 'add', tag: 'a', writable: [8] },
  { op: 'add', tag: 'b', writable: [] },
  { op: 'add', tag: 'c', writable: [4, 4] },
  { op: 'add', tag: 'd', writable: [8] },
  { op: 'pop' },
  { op: 'pop' },
  { op: 'pop' },
  { op: 'used', nth: 2 }, // c
  { op: 'used', nth: 0 }, // a
  { op: 'publish' },
  { op: 'reap' },
  { op: 'add', tag: 'e', writable: [8] },
  { op: 'pop' }, // d
  { op: 'pop' }, // e
  { op: 'used', nth: 2 }, // e
  { op: 'publish' },
  { op: 'reap' },
  { op: 'add', tag: 'f', writable: [2, 2] },
  { op: 'add', tag: 'g', writable: [] },
  { op: 'pop' }, // f
  { op: 'used', nth: 1 }, // d
  { op: 'used', nth: 1 }, // f
  { op: 'publish' },
  { op: 'reap' },
  { op: 'add', tag: 'h', writable: [8] },
  { op: 'pop' }, // g
  { op: 'pop' }, // h
  { op: 'used', nth: 2 }, // h
  { op: 'publish' },
]; // it ends with b and g in flight, h used and published but not reaped

describe('split: recovery from a record cut at every store', () => {
  function setup(budget: number) {
    const drv = new MockSplitDriver({ size: 8 });
    const buffer = new ArrayBuffer(inflightQueueBytes(8));
    const views = InflightRegion.over(buffer, 1, 8).queueViews(0);
    new SplitInflightRecord(views, 8).initialize(0);
    const spend = new Budget(budget);
    const ring = new BudgetedSplitQueue(drv.memory, drv.config);
    ring.budget = spend;
    const q = new SplitInflightQueue(ring, new SplitInflightRecord(budgetedViews(views, spend), 8));
    return { drv, views, q, spend };
  }

  function restart(drv: MockSplitDriver, views: RegionViews): SplitInflightQueue {
    const ring = drv.device();
    // What QEMU sends after a back-end crash: SET_VRING_BASE = the used index in guest memory.
    const used = drv.memory.readU16(drv.config.deviceArea + 2n);
    ring.nextAvail = used;
    ring.nextUsed = used;
    return SplitInflightQueue.open(ring, new SplitInflightRecord(views, 8));
  }

  it('counts its stores: a few per chain', () => {
    const { drv, q, spend } = setup(Number.POSITIVE_INFINITY);
    expect(runSteps(SCRIPT, makeHarness(drv), drv, q)).toBe(false);
    // 8 chains popped (counter lo/hi, inflight), 6 used (used element, 2 list stores, the clear),
    // 4 publications (the used index, then used_idx).
    expect(spend.stores).toBe(8 * 3 + 6 * 4 + 4 * 2);
  });

  it('every cut recovers: nothing lost, nothing served twice, pop order kept', () => {
    const total = (() => {
      const { drv, q, spend } = setup(Number.POSITIVE_INFINITY);
      runSteps(SCRIPT, makeHarness(drv), drv, q);
      return spend.stores;
    })();
    for (let cut = 0; cut <= total; cut++) {
      const { drv, views, q } = setup(cut);
      const h = makeHarness(drv);
      const crashed = runSteps(SCRIPT, h, drv, q);
      expect(crashed, `cut ${cut}`).toBe(cut < total);
      const at = `step ${lastStep} ${JSON.stringify(SCRIPT[lastStep])}`;
      restartAndFinish(
        h,
        drv,
        restart(drv, views),
        `split, crash before store ${cut + 1} of ${total} in ${at}`,
      );
    }
  });

  it('a record that no back-end could have written is refused', () => {
    const views = InflightRegion.over(new ArrayBuffer(inflightQueueBytes(4)), 1, 4).queueViews(0);
    const record = new SplitInflightRecord(views, 4);
    record.initialize(0);
    views.u8[16 + 16 * 3] = 1;
    expect(() => new SplitInflightRecord(views, 4).recover(0, 2)).toThrow(/outside the ring/);
    views.u8[16 + 16 * 3] = 0;
    views.u16[7] = 100; // used_idx far behind the ring
    expect(() => new SplitInflightRecord(views, 4).recover(0, 4)).toThrow(/behind the ring/);
    views.u16[4] = 7;
    expect(() => new SplitInflightRecord(views, 4).recover(0, 4)).toThrow(/version 7/);
    expect(() => new SplitInflightRecord(views, 64)).toThrow(RangeError);
  });
});

describe('packed: recovery from a record cut at every store', () => {
  function setup(budget: number) {
    const drv = new MockPackedDriver({ size: 8 });
    const buffer = new ArrayBuffer(inflightQueueBytes(8));
    const views = InflightRegion.over(buffer, 1, 8).queueViews(0);
    new PackedInflightRecord(views, 8).initialize(0, 1);
    const spend = new Budget(budget);
    const ring = new BudgetedPackedQueue(drv.memory, drv.config);
    ring.budget = spend;
    const q = new PackedInflightQueue(ring, new PackedInflightRecord(budgetedViews(views, spend), 8));
    return { drv, views, q, spend };
  }

  function restart(drv: MockPackedDriver, views: RegionViews): PackedInflightQueue {
    const ring = drv.device();
    // QEMU 7.2 has no used index of a packed ring to go back to: it sends the base the ring started with.
    ring.vringBase = 0x8000_8000;
    return PackedInflightQueue.open(ring, new PackedInflightRecord(views, 8));
  }

  it('counts its stores', () => {
    const { drv, q, spend } = setup(Number.POSITIVE_INFINITY);
    expect(runSteps(SCRIPT, makeHarness(drv), drv, q)).toBe(false);
    expect(spend.stores).toBeGreaterThan(100);
  });

  it('every cut recovers: nothing lost, nothing served twice, pop order kept, across ring laps', () => {
    const total = (() => {
      const { drv, q, spend } = setup(Number.POSITIVE_INFINITY);
      runSteps(SCRIPT, makeHarness(drv), drv, q);
      return spend.stores;
    })();
    for (let cut = 0; cut <= total; cut++) {
      const { drv, views, q } = setup(cut);
      const h = makeHarness(drv);
      const crashed = runSteps(SCRIPT, h, drv, q);
      expect(crashed, `cut ${cut}`).toBe(cut < total);
      const at = `step ${lastStep} ${JSON.stringify(SCRIPT[lastStep])}`;
      restartAndFinish(
        h,
        drv,
        restart(drv, views),
        `packed, crash before store ${cut + 1} of ${total} in ${at}`,
      );
    }
  });

  it('a record that no back-end could have written is refused', () => {
    const drv = new MockPackedDriver({ size: 4 });
    const views = InflightRegion.over(new ArrayBuffer(inflightQueueBytes(4)), 1, 4).queueViews(0);
    new PackedInflightRecord(views, 4).initialize(0, 1);
    views.u8[32] = 1; // entry 0 in flight with num 0
    views.u16[7] = 1; // ... and not in the free list
    views.u16[6] = 1;
    expect(() => PackedInflightQueue.open(drv.device(), new PackedInflightRecord(views, 4))).toThrow(
      /buffer of 0 descriptors/,
    );
    views.u8[20] = 2;
    expect(() => PackedInflightQueue.open(drv.device(), new PackedInflightRecord(views, 4))).toThrow(
      /wrap counter/,
    );
  });
});
