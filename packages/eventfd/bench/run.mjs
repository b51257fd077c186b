// Benchmark of @rxvmm/eventfd against a C reference measured in the same run.
//   latency:    another thread (worker_threads) stamps the clock and writes an
//               EventFd; a signals$ subscriber on the main thread computes the
//               delay and answers on a second eventfd (ping-pong: each sample is
//               one cross-thread wake-up). p50 and p99.
//   throughput: the other thread writes 1 `signals` times as fast as it can; the
//               subscriber sums the coalesced values until all arrived.
// The C program (bench/eventfd_bench.c, built here with `cc -O2`) does the same
// with pthreads and epoll_wait. Rounds interleave C and JS; the table shows medians, and each
// figure goes to `pnpm bench`'s record. Usage (after `tsc -p tsconfig.build.json`):
//   node bench/run.mjs [--samples 50000] [--signals 1000000] [--warmup 2000] [--rounds 3]
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { figure, median, recordFigures } from '../../../bench/figures.mjs';
import { EventFd } from '../dist/index.js';

const { values } = parseArgs({
  options: {
    samples: { type: 'string', default: '50000' },
    signals: { type: 'string', default: '1000000' },
    warmup: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '3' },
  },
});
const rounds = Number(values.rounds);
const samples = Number(values.samples);
const signals = Number(values.signals);
const warmup = Number(values.warmup);

function buildC() {
  const dir = fileURLToPath(new URL('./build/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const exe = `${dir}eventfd_bench`;
  const src = fileURLToPath(new URL('./eventfd_bench.c', import.meta.url));
  execFileSync('cc', ['-O2', '-pthread', '-o', exe, src], { stdio: 'inherit' });
  return exe;
}

function runC(exe) {
  return JSON.parse(
    execFileSync(exe, [String(samples), String(signals), String(warmup)], { encoding: 'utf8' }),
  );
}

function runJs() {
  return new Promise((resolve, reject) => {
    const a = new EventFd(); // other thread -> main: what signals$ watches
    const b = new EventFd(); // main -> other thread: the answer
    const go = new EventFd(); // main -> other thread: start of the throughput phase
    const stamp = new SharedArrayBuffer(8);
    const stamps = new BigInt64Array(stamp);
    const latencies = new Float64Array(samples);
    let n = 0;
    let total = 0n;
    let wakeups = 0;
    let start = 0n;
    const worker = new Worker(new URL('./worker.mjs', import.meta.url), {
      workerData: { fdA: a.fd, fdB: b.fd, fdGo: go.fd, samples, signals, warmup, stamp },
    });
    worker.on('error', reject);
    const subscription = a.signals$.subscribe((value) => {
      if (n < warmup + samples) {
        const delay = process.hrtime.bigint() - Atomics.load(stamps, 0);
        if (n >= warmup) latencies[n - warmup] = Number(delay);
        n++;
        if (n === warmup + samples) {
          start = process.hrtime.bigint();
          go.write(1n);
        }
        b.write(1n);
        return;
      }
      total += value;
      wakeups++;
      if (total >= BigInt(signals)) {
        const elapsed = Number(process.hrtime.bigint() - start);
        subscription.unsubscribe();
        worker.once('exit', () => {
          a.close();
          b.close();
          go.close();
          latencies.sort();
          resolve({
            p50_ns: latencies[Math.floor(samples / 2)],
            p99_ns: latencies[Math.floor((samples * 99) / 100)],
            throughput: signals / (elapsed / 1e9),
            wakeups,
          });
        });
      }
    });
  });
}

const exe = buildC();
console.log(
  `@rxvmm/eventfd bench: ${samples} ping-pong samples (+${warmup} warm-up), ${signals} coalesced signals, median of ${rounds} interleaved rounds`,
);
const cs = [];
const jss = [];
for (let r = 0; r < rounds; r++) {
  cs.push(runC(exe));
  jss.push(await runJs());
}
const pick = (runs, key) => runs.map((x) => x[key]);
const c = Object.fromEntries(Object.keys(cs[0]).map((k) => [k, median(pick(cs, k))]));
const js = Object.fromEntries(Object.keys(jss[0]).map((k) => [k, median(pick(jss, k))]));
const us = (ns) => (ns / 1000).toFixed(2);
const rows = [
  ['latency p50 (µs)', us(js.p50_ns), us(c.p50_ns), js.p50_ns / c.p50_ns],
  ['latency p99 (µs)', us(js.p99_ns), us(c.p99_ns), js.p99_ns / c.p99_ns],
  ['throughput (signals/s)', js.throughput.toFixed(0), c.throughput.toFixed(0), js.throughput / c.throughput],
  ['  wake-ups (reads)', String(js.wakeups), String(c.wakeups), js.wakeups / c.wakeups],
];
const pad = (s, n) => String(s).padEnd(n);
console.log(`${pad('metric', 26)}${pad('EventFd.signals$', 18)}${pad('C (pthread+epoll)', 19)}ratio JS/C`);
for (const [name, j, cc, ratio] of rows)
  console.log(`${pad(name, 26)}${pad(j, 18)}${pad(cc, 19)}${ratio.toFixed(2)}`);
const p50Ratio = js.p50_ns / c.p50_ns;
console.log(
  `target: p50 latency within 3x of C -> ${p50Ratio <= 3 ? 'met' : 'NOT met'} (${p50Ratio.toFixed(2)}x)`,
);
const C_REF = 'C pthread + epoll (bench/eventfd_bench.c)';
recordFigures('eventfd', [
  figure({
    figure: 'latency-p50',
    what: 'cross-thread eventfd → `signals$` latency, p50',
    unit: 'µs',
    better: 'lower',
    values: pick(jss, 'p50_ns').map((ns) => ns / 1000),
    reference: C_REF,
    referenceValues: pick(cs, 'p50_ns').map((ns) => ns / 1000),
    target: 'ratio <= 3',
  }),
  figure({
    figure: 'latency-p99',
    what: 'cross-thread eventfd → `signals$` latency, p99',
    unit: 'µs',
    better: 'lower',
    values: pick(jss, 'p99_ns').map((ns) => ns / 1000),
    reference: C_REF,
    referenceValues: pick(cs, 'p99_ns').map((ns) => ns / 1000),
  }),
  figure({
    figure: 'throughput',
    what: 'coalesced signals delivered per second, one writer thread',
    unit: 'signals/s',
    better: 'higher',
    values: pick(jss, 'throughput'),
    reference: C_REF,
    referenceValues: pick(cs, 'throughput'),
  }),
]);
