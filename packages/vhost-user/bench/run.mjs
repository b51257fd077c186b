// vhost-user round trip: a TS frontend kicks a ring served by a TS back-end in
// another process and waits for its call eventfd, one request at a time; against
// the C eventfd ping-pong between two processes (the floor), measured in the same run, rounds
// interleaved (C, TS, C, TS, ...); medians, and the figure to `pnpm bench`'s record.
import { execFileSync, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { figure, median, recordFigures } from '../../../bench/figures.mjs';
import { VhostUserFrontend } from '../dist/index.js';
import { MemfdRam, TestQueue } from '../dist/testing/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const N = Number(process.env.N ?? 20000);
const ROUNDS = Number(process.env.ROUNDS ?? 5);

/** One round of the C floor: N eventfd round trips between two processes, ns each. */
const cRound = () =>
  Number(execFileSync(join(here, 'dist', 'pingpong'), [String(N), '1'], { encoding: 'utf8' }).trim());

const dir = mkdtempSync(join(tmpdir(), 'rxvmm-vu-bench-'));
const socket = join(dir, 's');
const child = fork(join(here, 'backend.mjs'), [socket], {
  stdio: 'inherit',
  execArgv: process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [],
});
await new Promise((r) => child.once('message', r));

const ram = new MemfdRam(1 << 20);
const q = new TestQueue(ram, 256, 0x10000n);
const fe = VhostUserFrontend.connect(socket);
await fe.start({ wantFeatures: 1n << 32n, memory: [ram.region], queues: [q.frontendQueue()] });

async function roundTrips(n) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    q.driver.add([{ addr: 0x40000n, len: 16 }], [{ addr: 0x41000n, len: 16 }]);
    q.kick.write(1n);
    await q.call.readAsync();
    while (q.driver.getUsed() !== null);
  }
  return Number(process.hrtime.bigint() - t0) / n;
}

await roundTrips(Math.min(N, 2000)); // warm-up (JIT)
const results = [];
const cResults = [];
for (let r = 0; r < ROUNDS; r++) {
  cResults.push(cRound());
  results.push(await roundTrips(N));
}
const ts = median(results);
const cRef = median(cResults);

fe.close();
child.send('stop');
await new Promise((r) => child.once('exit', r));
q.close();
ram.close();
rmSync(dir, { recursive: true, force: true });

console.log(
  `vhost-user round trip (kick -> back-end pops, completes, signals call -> frontend), ${N} x ${ROUNDS} rounds, median`,
);
console.log(`  rxvmm TS frontend + TS back-end: ${(ts / 1000).toFixed(1)} us`);
console.log(`  C eventfd ping-pong, 2 processes: ${(cRef / 1000).toFixed(1)} us`);
console.log(`  ratio (rxvmm / C): ${(ts / cRef).toFixed(2)}x`);
recordFigures('vhost-user', [
  figure({
    figure: 'round-trip',
    what: 'vhost-user round trip: kick → back-end pops and completes → call (one request in flight)',
    unit: 'µs',
    better: 'lower',
    values: results.map((ns) => ns / 1000),
    reference: 'C eventfd ping-pong, 2 processes (bench/pingpong.c)',
    referenceValues: cResults.map((ns) => ns / 1000),
  }),
]);
