// Device-side virtqueue benchmark: chains/s for split and packed rings with
// 1-descriptor, 3-descriptor and indirect chains, each beside the C reference
// (bench/ring_ref.c, compiled here with cc -O2) walking and validating the same
// ring layout in the same run. Only the device phase is timed (pop + checks +
// used entry); the driver refill between rounds is not, in either language.
// Each mode runs BENCH_ROUNDS times (default 3), JS and C interleaved, each
// run in a fresh process. A run's rate is its chains per round (one refill:
// a full ring of chains) over its median round time; the table shows the
// median of the runs, and each figure goes to `pnpm bench`'s record.
//
//   pnpm bench                     (builds dist first)
//   BENCH_SECONDS=2 BENCH_ROUNDS=5 node bench/run.mjs
//   BENCH_MODES=split-1,packed-1 node bench/run.mjs
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { figure, median, recordFigures } from '../../../bench/figures.mjs';
import { ChainBuffer, GuestMemory, PackedQueue, SplitQueue } from '../dist/index.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 0.5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const here = fileURLToPath(new URL('.', import.meta.url));

// Layout shared with ring_ref.c.
const BASE = 0x100000;
const MEM_SIZE = 4 << 20;
const QSIZE = 256;
const DESC_OFF = 0x0;
const AVAIL_OFF = 0x1000;
const USED_OFF = 0x2000;
const DRV_EVT_OFF = 0x1000;
const DEV_EVT_OFF = 0x1010;
const TABLE_OFF = 0x4000;
const DATA_OFF = 0x10000;
const F_NEXT = 1;
const F_WRITE = 2;
const F_INDIRECT = 4;
const F_AVAIL = 1 << 7;
const F_USED = 1 << 15;
const PART_OFF = [0, 64, 600];
const PART_LEN = [16, 512, 1];
const PART_FLAGS = [0, 0, F_WRITE];

function setup(mode) {
  const split = mode.startsWith('split');
  const kind = mode.split('-')[1];
  const batch = mode.endsWith('-batch');
  const indirect = kind === 'indirect';
  const chainDescs = kind === '3' ? 3 : 1;
  const perRound = Math.floor(QSIZE / chainDescs);
  const bytes = new Uint8Array(MEM_SIZE);
  const dv = new DataView(bytes.buffer);
  const u16 = new Uint16Array(bytes.buffer);
  const mem = new GuestMemory([{ guestPhysAddr: BigInt(BASE), bytes }]);
  const dataAddr = (chain, part) => BASE + DATA_OFF + 1024 * chain + PART_OFF[part];
  const put = (o, addr, len, a, b) => {
    dv.setBigUint64(o, BigInt(addr), true);
    dv.setUint32(o + 8, len, true);
    dv.setUint16(o + 12, a, true);
    dv.setUint16(o + 14, b, true);
  };
  for (let t = 0; t < QSIZE; t++) {
    for (let k = 0; k < 3; k++) {
      const o = TABLE_OFF + 64 * t + 16 * k;
      if (split) put(o, dataAddr(t, k), PART_LEN[k], PART_FLAGS[k] | (k < 2 ? F_NEXT : 0), k + 1);
      else put(o, dataAddr(t, k), PART_LEN[k], 0, PART_FLAGS[k]);
    }
  }
  const cfg = {
    size: QSIZE,
    descTable: BigInt(BASE + DESC_OFF),
    driverArea: BigInt(BASE + (split ? AVAIL_OFF : DRV_EVT_OFF)),
    deviceArea: BigInt(BASE + (split ? USED_OFF : DEV_EVT_OFF)),
    indirect: true,
  };
  let refill;
  if (split) {
    for (let j = 0; j < perRound; j++) {
      for (let k = 0; k < chainDescs; k++) {
        const o = DESC_OFF + 16 * (j * chainDescs + k);
        if (indirect) put(o, BASE + TABLE_OFF + 64 * j, 48, F_INDIRECT, 0);
        else if (chainDescs === 1) put(o, dataAddr(j, 1), 512, 0, 0);
        else put(o, dataAddr(j, k), PART_LEN[k], PART_FLAGS[k] | (k < 2 ? F_NEXT : 0), j * 3 + k + 1);
      }
    }
    let availIdx = 0;
    refill = () => {
      for (let j = 0; j < perRound; j++) {
        u16[(AVAIL_OFF + 4 + 2 * (availIdx & (QSIZE - 1))) >> 1] = j * chainDescs;
        availIdx = (availIdx + 1) & 0xffff;
      }
      Atomics.store(u16, (AVAIL_OFF + 2) >> 1, availIdx);
    };
    return { mode, refill, batch, queue: new SplitQueue(mem, cfg) };
  }
  let pos = 0;
  let wrap = 1;
  refill = () => {
    for (let j = 0; j < perRound; j++) {
      const headPos = pos;
      let headFlags = 0;
      for (let k = 0; k < chainDescs; k++) {
        const o = DESC_OFF + 16 * pos;
        const av = wrap ? F_AVAIL : F_USED;
        let f;
        if (indirect) {
          put(o, BASE + TABLE_OFF + 64 * j, 48, j, 0);
          f = F_INDIRECT | av;
        } else if (chainDescs === 1) {
          put(o, dataAddr(j, 1), 512, j, 0);
          f = av;
        } else {
          put(o, dataAddr(j, k), PART_LEN[k], j, 0);
          f = PART_FLAGS[k] | (k < 2 ? F_NEXT : 0) | av;
        }
        if (k === 0) headFlags = f;
        else dv.setUint16(o + 14, f, true);
        if (++pos === QSIZE) {
          pos = 0;
          wrap ^= 1;
        }
      }
      Atomics.store(u16, (DESC_OFF + 16 * headPos + 14) >> 1, headFlags);
    }
  };
  return { mode, refill, batch, queue: new PackedQueue(mem, cfg) };
}

/** The device loop under test: allocation-free popInto + pushUsed (or addUsed + one publishUsed per round). */
function runJs(mode, seconds, variant = 'popInto') {
  const { refill, queue, batch } = setup(mode);
  const chain = new ChainBuffer();
  let chains = 0;
  let checksum = 0;
  let timed = 0n;
  const roundNs = [];
  const budget = BigInt(Math.round(seconds * 1e9));
  while (timed < budget) {
    refill();
    const t0 = process.hrtime.bigint();
    if (batch) {
      while (queue.popInto(chain)) {
        checksum += chain.readableLength + chain.readableCount + chain.writableCount;
        queue.addUsed(chain.head, chain.writableLength);
        chains++;
      }
      queue.publishUsed();
    } else if (variant === 'popInto') {
      while (queue.popInto(chain)) {
        checksum += chain.readableLength + chain.readableCount + chain.writableCount;
        queue.pushUsed(chain.head, chain.writableLength);
        chains++;
      }
    } else {
      for (let c = queue.pop(); c; c = queue.pop()) {
        checksum += c.readableLength + c.readable.length + c.writable.length;
        queue.pushUsed(c.head, c.writableLength);
        chains++;
      }
    }
    const dt = process.hrtime.bigint() - t0;
    timed += dt;
    roundNs.push(Number(dt));
  }
  // The median round, not the mean: a round the scheduler interrupted (a shared machine) is an
  // outlier either way, and C is measured the same way.
  const perRound = chains / roundNs.length;
  return { chains, seconds: Number(timed) / 1e9, checksum, rate: perRound / (median(roundNs) / 1e9) };
}

function runC(bin, mode, seconds) {
  return JSON.parse(execFileSync(bin, [mode, String(seconds)], { encoding: 'utf8' }));
}

// Each JS row runs in its own process (like each C row), so one mode's JIT
// feedback (e.g. a polymorphic call site) does not slow another down.
const childMode = process.argv.indexOf('--js');
if (childMode >= 0) {
  const [mode, variant] = process.argv.slice(childMode + 1);
  runJs(mode, Math.min(0.3, SECONDS), variant); // warm up the JIT
  console.log(JSON.stringify(runJs(mode, SECONDS, variant)));
  process.exit(0);
}

function runJsChild(mode, variant = 'popInto') {
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--js', mode, variant], {
    encoding: 'utf8',
  });
  return JSON.parse(out);
}

const dir = mkdtempSync(join(tmpdir(), 'rxvmm-ring-bench-'));
const bin = join(dir, 'ring_ref');
execFileSync('cc', ['-O2', '-o', bin, join(here, 'ring_ref.c')], { stdio: 'inherit' });

const fmt = (n) => `${(n / 1e6).toFixed(2)} M/s`;
console.log(
  `virtio-ring device side, queue size ${QSIZE}, ${SECONDS}s timed per run, median of ${ROUNDS} rounds (node ${process.version})`,
);
console.log('mode               JS               C (-O2)          JS/C   [range over rounds]');
const modes = (
  process.env.BENCH_MODES ??
  'split-1,split-3,split-indirect,packed-1,packed-3,packed-indirect,split-1-batch,split-3-batch'
).split(',');
const WHAT = {
  'split-1': '1-descriptor split chains, used idx published per chain (`pushUsed`)',
  'split-3': '3-descriptor split chains (virtio-blk shaped), used idx per chain',
  'split-indirect': 'split chains of one indirect table of 3 descriptors',
  'packed-1': '1-descriptor packed chains',
  'packed-3': '3-descriptor packed chains',
  'packed-indirect': 'packed chains of one indirect table of 3 descriptors',
  'split-1-batch':
    '1-descriptor split chains, used idx published once per batch (`addUsed`, as `serveQueue` does)',
  'split-3-batch': '3-descriptor split chains, used idx published once per batch',
};
const figures = [];
for (const mode of modes) {
  const js = [];
  const c = [];
  for (let r = 0; r < ROUNDS; r++) {
    const j = runJsChild(mode);
    const cc = runC(bin, mode, SECONDS);
    if (cc.chains > 0 && j.chains > 0 && cc.checksum / cc.chains !== j.checksum / j.chains) {
      throw new Error(`${mode}: JS and C walked different chains`);
    }
    js.push(j.rate);
    c.push(cc.rate);
  }
  const ratios = js.map((x, i) => x / c[i]);
  console.log(
    `${mode.padEnd(18)} ${fmt(median(js)).padEnd(16)} ${fmt(median(c)).padEnd(16)} ${(median(js) / median(c)).toFixed(3)}  [${Math.min(...ratios).toFixed(3)}-${Math.max(...ratios).toFixed(3)}]`,
  );
  figures.push(
    figure({
      figure: mode,
      what: WHAT[mode] ?? mode,
      unit: 'M chains/s',
      better: 'higher',
      values: js.map((x) => x / 1e6),
      reference: 'C -O2 (bench/ring_ref.c)',
      referenceValues: c.map((x) => x / 1e6),
      target: mode === 'split-1' || mode === 'split-1-batch' ? 'ratio >= 0.25' : undefined,
    }),
  );
}
console.log('(*-batch: used idx published once per round: JS addUsed + publishUsed, C one release store)');
if (!process.env.BENCH_MODES) {
  const alloc = [];
  for (let r = 0; r < ROUNDS; r++) {
    alloc.push(runJsChild('split-1', 'pop').rate);
  }
  console.log(`split-1 via pop() (allocates a DescriptorChain per chain): ${fmt(median(alloc))}`);
  figures.push(
    figure({
      figure: 'split-1-pop',
      what: '1-descriptor split chains through `pop()` (a new DescriptorChain per chain)',
      unit: 'M chains/s',
      better: 'higher',
      values: alloc.map((x) => x / 1e6),
    }),
  );
}
recordFigures('virtio-ring', figures);
