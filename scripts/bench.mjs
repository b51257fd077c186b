#!/usr/bin/env node
// `pnpm bench`: runs every package's benchmark (after `turbo run build`) and writes ONE record of
// the run to bench/results/<date>-<commit>.json (format: bench/README.md).
//
// The record holds the commit, the date, the Node version, the load average before and after, the
// machine's yardstick (`node -e 0` start-up, median of YARDSTICK_RUNS runs measured here, in the same
// run) and every figure the benchmarks reported: each package's `bench` script gets BENCH_RECORD=<file>
// in its environment and appends one JSON line per figure to it:
//
//   {bench, figure, what, unit, better, value, min, max, rounds,
//    reference, referenceValue, referenceMin, referenceMax, ratio, ratioMin, ratioMax, target}
//
// value/min/max are rxvmm's figure over the rounds (median, lowest, highest), the reference* fields
// the same for the reference measured in the same run (C, QEMU, or `node -e 0`), ratio = value /
// referenceValue with the per-round ratios' range. A benchmark that fails is recorded with its exit
// status and the run goes on; the script exits 1 when any failed.
//
//   node scripts/bench.mjs [--only io-bus,virtio-ring] [--out FILE] [--dry-run]
//
// --only runs some benchmarks (the record says which ran); --dry-run writes no record.
// README tables are generated from a committed record by scripts/bench-tables.mjs.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';

const root = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const { values: args } = parseArgs({
  options: {
    only: { type: 'string' },
    out: { type: 'string' },
    'dry-run': { type: 'boolean', default: false },
  },
});

/** The benchmarks, in the order they run: light ones first, the QEMU boots last. */
const BENCHES = [
  'packages/io-bus',
  'packages/eventfd',
  'packages/virtio-ring',
  'packages/virtio-blk',
  'packages/vhost-user',
  'packages/kvm-linux',
  'apps/demo-vmm',
  'apps/vhost-backend',
];
const YARDSTICK_RUNS = 11;

const only = args.only?.split(',').map((s) => s.trim());
const selected = BENCHES.filter((dir) => !only || only.some((o) => dir.endsWith(`/${o}`)));
if (only && selected.length !== only.length) {
  console.error(
    `bench: --only names ${only.join(', ')}; known: ${BENCHES.map((d) => d.split('/')[1]).join(', ')}`,
  );
  process.exit(2);
}

const git = (...a) => execFileSync('git', a, { cwd: root, encoding: 'utf8' }).trim();
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round = (x, digits = 3) => Number(x.toFixed(digits));
const load = () => loadavg().map((l) => round(l, 2));

/** `node -e 0`, process start to exit, as this machine runs it now: the yardstick of the run. */
function nodeStartup(runs) {
  const ms = [];
  spawnSync(process.execPath, ['-e', '0']); // page cache warm, as for every later figure
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    spawnSync(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return {
    figure: 'node -e 0',
    unit: 'ms',
    value: round(median(ms), 1),
    min: round(Math.min(...ms), 1),
    max: round(Math.max(...ms), 1),
    rounds: runs,
  };
}

/** Runs one package's `bench` script with BENCH_RECORD set; its output streams through. */
function runBench(dir, recordFile) {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const child = spawn('npm', ['run', '--silent', 'bench'], {
      cwd: join(root, dir),
      stdio: 'inherit',
      env: { ...process.env, BENCH_RECORD: recordFile },
    });
    child.on('close', (code, signal) =>
      resolve({
        status: code ?? (signal ? 128 : 1),
        seconds: round(Number(process.hrtime.bigint() - started) / 1e9, 1),
      }),
    );
  });
}

function readRows(file) {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line));
}

const commit = git('rev-parse', 'HEAD');
const dirty = git('status', '--porcelain', '--untracked-files=no') !== '';
const date = new Date();
const record = {
  format: 'rxvmm-bench/1',
  commit,
  dirty,
  date: date.toISOString(),
  node: process.version,
  v8: process.versions.v8,
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    kernel: release(),
    memoryGiB: round(totalmem() / 2 ** 30, 1),
  },
  loadAverage: { before: load(), after: null },
  yardstick: null,
  benches: [],
  figures: [],
};

console.log(
  `bench: ${selected.length} benchmark(s) on ${commit.slice(0, 12)}${dirty ? ' (with uncommitted changes)' : ''}, Node ${process.version}, load average ${record.loadAverage.before.join(' ')}`,
);
record.yardstick = nodeStartup(YARDSTICK_RUNS);
console.log(
  `bench: yardstick node -e 0: ${record.yardstick.value} ms (${record.yardstick.min}-${record.yardstick.max}, ${YARDSTICK_RUNS} runs)`,
);

const scratch = join(tmpdir(), `rxvmm-bench-${process.pid}`);
mkdirSync(scratch, { recursive: true });
let failed = 0;
for (const dir of selected) {
  const file = join(scratch, `${dir.replace('/', '-')}.jsonl`);
  console.log(`\n=== ${dir} (load average ${load().join(' ')})`);
  const { status, seconds } = await runBench(dir, file);
  const rows = readRows(file);
  record.benches.push({ bench: dir.split('/')[1], dir, status, seconds, figures: rows.length });
  record.figures.push(...rows);
  if (status !== 0) {
    failed++;
    console.log(`bench: ${dir} exited with status ${status}`);
  } else if (rows.length === 0) {
    failed++;
    console.log(`bench: ${dir} recorded no figure (does its bench write BENCH_RECORD rows?)`);
  }
}
rmSync(scratch, { recursive: true, force: true });
record.loadAverage.after = load();

console.log('\nbench: figures (value = median over rounds; ratio = rxvmm / reference)');
for (const f of record.figures) {
  const ref =
    f.referenceValue == null
      ? ''
      : `  ${f.reference} ${f.referenceValue}  ratio ${f.ratio}x [${f.ratioMin}-${f.ratioMax}]`;
  console.log(
    `  ${`${f.bench}/${f.figure}`.padEnd(36)} ${f.value} ${f.unit} [${f.min}-${f.max}]${ref}${f.target ? `  target ${f.target}` : ''}`,
  );
}

if (!args['dry-run']) {
  const day = date.toISOString().slice(0, 10);
  let out = args.out ?? join(root, 'bench/results', `${day}-${commit.slice(0, 7)}.json`);
  for (let n = 2; !args.out && existsSync(out); n++)
    out = join(root, 'bench/results', `${day}-${commit.slice(0, 7)}-${n}.json`);
  mkdirSync(join(out, '..'), { recursive: true });
  writeFileSync(out, `${JSON.stringify(record, null, 2)}\n`);
  // In the repository's JSON style, so `pnpm lint` passes with the record committed.
  spawnSync(join(root, 'node_modules/.bin/biome'), ['format', '--write', out], { stdio: 'ignore' });
  console.log(
    `\nbench: record written to ${relative(root, out)} (load average ${record.loadAverage.before.join(' ')} before, ${record.loadAverage.after.join(' ')} after)`,
  );
  console.log(`bench: README tables from it: node scripts/bench-tables.mjs --record ${relative(root, out)}`);
}
process.exitCode = failed === 0 ? 0 : 1;
