/**
 * The other side of a ring is another thread: a driver in a worker thread
 * (plain JS over a SharedArrayBuffer, publishing with Atomics release stores)
 * and the device on this thread. Every buffer must arrive intact and in
 * order, and every completion must get back.
 */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { ChainBuffer, GuestMemory, PackedQueue, SplitQueue, type Virtqueue } from '../src/index.js';

const BASE = 0x40000;
const SIZE = 64;
const TOTAL = 20_000;

// Worker: a minimal split or packed driver. Buffer i holds the u32 i; the device
// writes back i ^ 0xffffffff into the second word; the driver checks it on completion.
const driverSource = `
const { workerData, parentPort } = require('node:worker_threads');
const { sab, packed, size, total, base } = workerData;
const u16 = new Uint16Array(sab), u32 = new Uint32Array(sab);
const DESC = 0, AVAIL = 0x1000, USED = 0x2000, DATA = 0x4000;
let added = 0, completed = 0, availIdx = 0, lastUsed = 0, pos = 0, wrap = 1, usedPos = 0, usedWrap = 1;
const inflight = [];
function bufferOf(id) { return DATA + 8 * id; }
function check(id, len) {
  const i = inflight[id];
  if (i === undefined || len !== 8 || u32[(bufferOf(id) + 4) >> 2] !== ((i ^ 0xffffffff) >>> 0)) throw new Error('bad completion ' + id);
  inflight[id] = undefined;
  completed++;
}
while (completed < total) {
  // Offer as many buffers as fit.
  while (added < total && added - completed < (packed ? size : size / 2)) {
    // Split chains take two descriptors: head h (readable) and h + size/2 (writable).
    const id = packed ? pos : availIdx % (size / 2);
    const b = bufferOf(id);
    u32[b >> 2] = added; u32[(b + 4) >> 2] = 0;
    inflight[id] = added;
    const d = DESC + 16 * (packed ? pos : id);
    u32[d >> 2] = base + b; u32[(d + 4) >> 2] = 0; u32[(d + 8) >> 2] = 8;
    if (packed) {
      u16[(d + 12) >> 1] = id;
      Atomics.store(u16, (d + 14) >> 1, wrap ? 0x80 : 0x8000);
      if (++pos === size) { pos = 0; wrap ^= 1; }
    } else {
      u16[(d + 12) >> 1] = 1 /* NEXT */; u16[(d + 14) >> 1] = id + size / 2;
      const t = DESC + 16 * (id + size / 2);
      u32[t >> 2] = base + b + 4; u32[(t + 4) >> 2] = 0; u32[(t + 8) >> 2] = 4; u16[(t + 12) >> 1] = 2 /* WRITE */;
      u32[d >> 2] = base + b; u32[(d + 8) >> 2] = 4;
      u16[(AVAIL + 4 + 2 * (availIdx % size)) >> 1] = id;
      availIdx = (availIdx + 1) & 0xffff;
      Atomics.store(u16, (AVAIL + 2) >> 1, availIdx);
    }
    added++;
  }
  // Collect completions.
  if (packed) {
    for (;;) {
      const d = DESC + 16 * usedPos;
      const f = Atomics.load(u16, (d + 14) >> 1);
      if (((f >> 7) & 1) !== usedWrap || ((f >> 15) & 1) !== usedWrap) break;
      check(u16[(d + 12) >> 1], u32[(d + 8) >> 2] + 4);
      if (++usedPos === size) { usedPos = 0; usedWrap ^= 1; }
    }
  } else {
    const usedIdx = Atomics.load(u16, (USED + 2) >> 1);
    while (lastUsed !== usedIdx) {
      const e = USED + 4 + 8 * (lastUsed % size);
      check(u32[e >> 2], u32[(e + 4) >> 2] + 4);
      lastUsed = (lastUsed + 1) & 0xffff;
    }
  }
}
parentPort.postMessage(completed);
`;

async function runPair(packed: boolean): Promise<number> {
  const sab = new SharedArrayBuffer(0x10000);
  const mem = new GuestMemory([{ guestPhysAddr: BigInt(BASE), bytes: new Uint8Array(sab) }]);
  const cfg = {
    size: SIZE,
    descTable: BigInt(BASE),
    driverArea: BigInt(BASE + 0x1000),
    deviceArea: BigInt(BASE + 0x2000),
  };
  // Split ring memory is zero (idx 0); the packed ring starts zeroed too.
  const queue: Virtqueue = packed ? new PackedQueue(mem, cfg) : new SplitQueue(mem, cfg);
  const worker = new Worker(driverSource, {
    eval: true,
    workerData: { sab, packed, size: SIZE, total: TOTAL, base: BASE },
  });
  const finished = new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  let done = false;
  void finished.then(() => {
    done = true;
  });
  const chain = new ChainBuffer();
  const word = new Uint8Array(4);
  const dv = new DataView(word.buffer);
  let expected = 0;
  while (!done) {
    let n = 0;
    while (queue.popInto(chain)) {
      chain.read(mem, word);
      const value = dv.getUint32(0, true);
      if (value !== expected) throw new Error(`got ${value}, expected ${expected}`);
      expected++;
      dv.setUint32(0, (value ^ 0xffffffff) >>> 0, true);
      if (packed) {
        // Packed buffers are one readable 8-byte descriptor: the device writes the second word.
        mem.write(BigInt(chain.readableAddr[0]! + 4), word);
        queue.pushUsed(chain.head, 4);
      } else {
        expect(chain.write(mem, word)).toBe(4);
        queue.pushUsed(chain.head, 4);
      }
      n++;
    }
    // Yield to the event loop now and then so the worker's message can arrive.
    if (n === 0) await new Promise((r) => setImmediate(r));
  }
  expect(expected).toBe(TOTAL);
  return finished;
}

describe('driver in a worker thread, device on this thread (SharedArrayBuffer + Atomics)', () => {
  it('split ring: all buffers arrive in order and all completions return', async () => {
    expect(await runPair(false)).toBe(TOTAL);
  }, 120_000);

  it('packed ring: all buffers arrive in order and all completions return', async () => {
    expect(await runPair(true)).toBe(TOTAL);
  }, 120_000);
});
