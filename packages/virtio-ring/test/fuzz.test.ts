/**
 * Fuzz: random rings (random descriptors, links, flags, addresses, lengths,
 * indirect tables, avail indices / lap bits) through both queue formats.
 * Invariants: the only exception is a VirtqueueError, every accepted segment
 * lies inside guest memory, chains have bounded length, and every hostile
 * reason is actually reached.
 *
 * Default: 1,000,000 rings per format (a few seconds). More:
 *   RXVMM_FUZZ_RINGS=20000000 npx vitest run test/fuzz.test.ts   (or `pnpm fuzz`)
 * RXVMM_FUZZ_SEED picks the PRNG seed (printed on failure).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChainBuffer,
  GuestMemory,
  PackedQueue,
  type QueueConfig,
  SplitQueue,
  type Virtqueue,
  VirtqueueError,
} from '../src/index.js';

const RINGS = Number(process.env.RXVMM_FUZZ_RINGS ?? 1_000_000);
const SEED = Number(process.env.RXVMM_FUZZ_SEED ?? 0x9e3779b9) >>> 0;
/** Generous: ~3 s per million rings when idle, several times that on a loaded 2-core CI machine. */
const TIMEOUT = Math.max(120_000, (RINGS / 1_000_000) * 120_000);

const BASE = 0x10000;
const RAM = 0x10000;
const DESC = 0x0;
const AVAIL = 0x100;
const USED = 0x200;
const TABLES = 0x400; // 4 tables of 16 entries

/** xorshift32: fast and reproducible. */
class Rng {
  constructor(private s: number) {
    if (this.s === 0) this.s = 1;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  below(n: number): number {
    return this.next() % n;
  }
}

interface Harness {
  ram: Uint8Array;
  u16: Uint16Array;
  u32: Uint32Array;
  mem: GuestMemory;
}

function harness(): Harness {
  const ram = new Uint8Array(RAM);
  return {
    ram,
    u16: new Uint16Array(ram.buffer),
    u32: new Uint32Array(ram.buffer),
    mem: new GuestMemory([{ guestPhysAddr: BigInt(BASE), bytes: ram }]),
  };
}

/**
 * Writes a random descriptor's addr and len at byte offset `off`. Mostly
 * plausible (inside RAM, small), sometimes hostile; an INDIRECT descriptor
 * usually points at one of the indirect tables.
 */
function randomAddrLen(h: Harness, r: Rng, off: number, indirect: boolean): void {
  let lo: number;
  let hi = 0;
  let len: number;
  if (indirect && r.below(4) !== 0) {
    lo = BASE + TABLES + 256 * r.below(4);
    len = 16 * (1 + r.below(16));
    if (r.below(16) === 0) len += r.below(16);
  } else {
    const k = r.below(32);
    if (k < 28) lo = BASE + r.below(RAM);
    else if (k === 28) lo = r.next();
    else if (k === 29) {
      lo = r.next();
      hi = r.next();
    } else if (k === 30) lo = BASE + RAM - r.below(64);
    else {
      lo = (0xffffffff - r.below(4096)) >>> 0;
      hi = 0xffffffff;
    }
    const j = r.below(32);
    len = j < 24 ? r.below(64) : j < 28 ? 16 * r.below(8) : j < 31 ? 0 : r.next();
  }
  h.u32[off >> 2] = lo;
  h.u32[(off >> 2) + 1] = hi;
  h.u32[(off >> 2) + 2] = len;
}

function splitFlags(r: Rng): number {
  const x = r.next();
  return ((x & 3) !== 0 ? 1 : 0) | ((x >>> 2) % 10 < 3 ? 2 : 0) | ((x >>> 8) % 10 === 0 ? 4 : 0);
}

function checkChain(c: ChainBuffer, size: number): void {
  for (let i = 0; i < c.readableCount; i++) {
    const a = c.readableAddr[i]!;
    if (!(a >= BASE && c.readableLen[i]! <= BASE + RAM - a))
      throw new Error(`readable segment outside memory: ${a}+${c.readableLen[i]}`);
  }
  for (let i = 0; i < c.writableCount; i++) {
    const a = c.writableAddr[i]!;
    if (!(a >= BASE && c.writableLen[i]! <= BASE + RAM - a))
      throw new Error(`writable segment outside memory: ${a}+${c.writableLen[i]}`);
  }
  if (c.readableCount + c.writableCount > size + 4096) throw new Error('chain longer than possible');
}

const heads = new Uint32Array(64);
const lens = new Uint32Array(64);

/** Pops all it can, then completes the chains (so IDs stay in flight meanwhile); tallies the outcome. */
function drive(q: Virtqueue, chain: ChainBuffer, size: number, stats: Map<string, number>): void {
  let outcome = 'empty';
  let n = 0;
  try {
    while (n <= size && q.popInto(chain)) {
      checkChain(chain, size);
      heads[n] = chain.head;
      lens[n] = Math.min(chain.writableLength, 0xffffffff);
      n++;
      outcome = 'chains';
    }
  } catch (error) {
    if (!(error instanceof VirtqueueError)) throw error;
    outcome = error.reason;
  }
  // Completing after an error is allowed (in-flight requests may still finish).
  for (let i = 0; i < n; i++) q.pushUsed(heads[i]!, lens[i]!);
  q.needsNotification();
  q.enableNotifications();
  stats.set(outcome, (stats.get(outcome) ?? 0) + 1);
}

function report(name: string, stats: Map<string, number>, ms: number): void {
  const rows = [...stats.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}=${v}`);
  console.log(`[fuzz] ${name}: ${RINGS} rings in ${ms.toFixed(0)} ms (seed ${SEED}): ${rows.join(' ')}`);
}

describe(`fuzz: ${RINGS} random rings per format`, () => {
  // Most random rings are hostile: skip capturing stack traces for the expected errors.
  let limit: number;
  beforeAll(() => {
    limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
  });
  afterAll(() => {
    Error.stackTraceLimit = limit;
  });

  it(
    'split rings: only typed errors, never a segment outside memory',
    () => {
      const h = harness();
      const r = new Rng(SEED);
      const chain = new ChainBuffer();
      const stats = new Map<string, number>();
      // One queue per (size, features): reset between rings, as a device reset does.
      const queues = new Map<number, SplitQueue>();
      const t0 = performance.now();
      for (let i = 0; i < RINGS; i++) {
        const sizeLog = r.below(5);
        const size = 1 << sizeLog;
        const feat = r.below(8);
        const key = sizeLog * 8 + feat;
        let q = queues.get(key);
        if (!q) {
          const cfg: QueueConfig = {
            size,
            descTable: BigInt(BASE + DESC),
            driverArea: BigInt(BASE + AVAIL),
            deviceArea: BigInt(BASE + USED),
            indirect: (feat & 1) !== 0,
            eventIdx: (feat & 2) !== 0,
            strictOrder: (feat & 4) === 0,
          };
          q = new SplitQueue(h.mem, cfg);
          queues.set(key, q);
        }
        q.reset();
        for (let d = 0; d < size; d++) {
          const flags = splitFlags(r);
          randomAddrLen(h, r, DESC + 16 * d, (flags & 4) !== 0);
          h.u16[(DESC + 16 * d + 12) >> 1] = flags;
          h.u16[(DESC + 16 * d + 14) >> 1] = r.below(16) === 0 ? r.next() & 0xffff : r.below(size + 1);
        }
        // Refresh one indirect table.
        const t = TABLES + 256 * r.below(4);
        for (let d = r.below(16); d < 16; d += 1 + r.below(4)) {
          const flags = splitFlags(r) & (r.below(16) === 0 ? 7 : 3);
          randomAddrLen(h, r, t + 16 * d, false);
          h.u16[(t + 16 * d + 12) >> 1] = flags;
          h.u16[(t + 16 * d + 14) >> 1] = r.below(17);
        }
        for (let a = 0; a < size; a++)
          h.u16[(AVAIL + 4 + 2 * a) >> 1] = r.below(64) === 0 ? r.next() & 0xffff : r.below(size);
        h.u16[(AVAIL + 2) >> 1] = r.below(64) === 0 ? r.next() & 0xffff : r.below(size + 1);
        h.u16[AVAIL >> 1] = r.below(2);
        h.u16[(AVAIL + 4 + 2 * size) >> 1] = r.below(size + 1);
        drive(q, chain, size, stats);
      }
      report('split', stats, performance.now() - t0);
      expect(stats.get('chains')).toBeGreaterThan(RINGS / 20);
      for (const reason of [
        'head-out-of-range',
        'next-out-of-range',
        'chain-too-long',
        'nested-indirect',
        'indirect-with-next',
        'indirect-not-negotiated',
        'indirect-table-length',
        'descriptor-out-of-memory',
        'write-before-read',
        'avail-idx-jump',
      ]) {
        expect(stats.get(reason), reason).toBeGreaterThan(0);
      }
    },
    TIMEOUT,
  );

  it(
    'packed rings: only typed errors, never a segment outside memory',
    () => {
      const h = harness();
      const r = new Rng(SEED ^ 0x5bd1e995);
      const chain = new ChainBuffer();
      const stats = new Map<string, number>();
      const queues = new Map<number, PackedQueue>();
      const t0 = performance.now();
      for (let i = 0; i < RINGS; i++) {
        const size = 1 + r.below(16);
        const feat = r.below(8);
        const key = size * 8 + feat;
        let q = queues.get(key);
        if (!q) {
          const cfg: QueueConfig = {
            size,
            descTable: BigInt(BASE + DESC),
            driverArea: BigInt(BASE + AVAIL),
            deviceArea: BigInt(BASE + USED),
            indirect: (feat & 1) !== 0,
            eventIdx: (feat & 2) !== 0,
            strictOrder: (feat & 4) === 0,
          };
          q = new PackedQueue(h.mem, cfg);
          queues.set(key, q);
        }
        q.reset();
        for (let d = 0; d < size; d++) {
          const flags = splitFlags(r) & (r.below(4) === 0 ? 7 : 3);
          randomAddrLen(h, r, DESC + 16 * d, (flags & 4) !== 0);
          h.u16[(DESC + 16 * d + 12) >> 1] = r.below(4) === 0 ? r.below(4) : r.below(64);
          const lap = r.below(10);
          const bits = lap < 7 ? 0x80 : lap === 7 ? 0x8080 : lap === 8 ? 0 : 0x8000;
          h.u16[(DESC + 16 * d + 14) >> 1] = flags | bits;
        }
        const t = TABLES + 256 * r.below(4);
        for (let d = r.below(16); d < 16; d += 1 + r.below(4)) {
          const flags = splitFlags(r) & (r.below(16) === 0 ? 7 : 3);
          randomAddrLen(h, r, t + 16 * d, false);
          h.u16[(t + 16 * d + 14) >> 1] = flags;
        }
        h.u32[AVAIL >> 2] = r.next(); // driver event suppression: random flags / off_wrap
        drive(q, chain, size, stats);
      }
      report('packed', stats, performance.now() - t0);
      expect(stats.get('chains')).toBeGreaterThan(RINGS / 20);
      for (const reason of [
        'chain-too-long',
        'nested-indirect',
        'indirect-with-next',
        'indirect-in-chain',
        'indirect-not-negotiated',
        'indirect-table-length',
        'descriptor-out-of-memory',
        'write-before-read',
        'buffer-id-in-use',
      ]) {
        expect(stats.get(reason), reason).toBeGreaterThan(0);
      }
    },
    TIMEOUT,
  );
});
