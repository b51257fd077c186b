// io-bus dispatch benchmark: a 4-byte write to a random registered device with
// 10, 100 and 1,000 devices on the bus. O(log n) shows as a small, roughly
// constant step per tenfold growth. The C program in bench/ (same comparator,
// binary search, step-back and offer loop) is measured in the same run, rounds interleaved
// (TS, C, TS, C, ...; ROUNDS, default 3); medians, and each figure to `pnpm bench`'s record.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { figure, median, recordFigures } from '../../../bench/figures.mjs';
import { IoBus } from '../dist/index.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const cBin = `${here}bsearch`;
const ITER = 2_000_000;
const ROUNDS = Number(process.env.ROUNDS ?? 3);

function measureTs(n) {
  const bus = new IoBus('mmio');
  let hits = 0;
  const device = {
    write: (_addr, data) => {
      hits += data[0];
      return true;
    },
  };
  for (let i = 0; i < n; i++) bus.register(BigInt(i * 16), 8, device);
  const addrs = [];
  let x = 12345;
  for (let i = 0; i < 4096; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    addrs.push(BigInt(((x >>> 8) % n) * 16 + 4));
  }
  const data = Uint8Array.of(1, 0, 0, 0);
  for (let i = 0; i < 200_000; i++) bus.write(addrs[i & 4095], data); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ITER; i++) bus.write(addrs[i & 4095], data);
  const ns = Number(process.hrtime.bigint() - t0) / ITER;
  if (hits !== ITER + 200_000) throw new Error(`lost dispatches: ${hits}`);
  return ns;
}

function measureC(n) {
  const out = execFileSync(cBin, [String(n), String(ITER * 10)], { encoding: 'utf8' });
  return Number(/ns_per_dispatch ([\d.]+)/.exec(out)?.[1]);
}

const rows = [];
for (const n of [10, 100, 1000]) {
  const ts = [];
  const c = [];
  for (let r = 0; r < ROUNDS; r++) {
    ts.push(measureTs(n));
    c.push(measureC(n));
  }
  rows.push({ n, ts, c });
}
console.log(
  `io-bus dispatch (4-byte write, random device), ns per dispatch, median of ${ROUNDS} interleaved rounds`,
);
console.log('devices   TypeScript        C   ratio TS/C');
for (const { n, ts, c } of rows) {
  console.log(
    `${String(n).padStart(7)} ${median(ts).toFixed(1).padStart(12)} ${median(c).toFixed(1).padStart(8)} ${(median(ts) / median(c)).toFixed(1).padStart(12)}`,
  );
}
const [r10, , r1000] = rows;
console.log(
  `growth 10 -> 1000 devices: TS x${(median(r1000.ts) / median(r10.ts)).toFixed(2)}, C x${(median(r1000.c) / median(r10.c)).toFixed(2)} (linear scan would be ~x100)`,
);
recordFigures(
  'io-bus',
  rows.map(({ n, ts, c }) =>
    figure({
      figure: `dispatch-${n}`,
      what: `4-byte MMIO write dispatched to a random one of ${n} devices`,
      unit: 'ns',
      better: 'lower',
      values: ts,
      reference: 'C -O2 (bench/bsearch.c)',
      referenceValues: c,
    }),
  ),
);
