// Benchmark: a real Linux guest under QEMU (TCG) drives two vhost-user-blk disks with O_DIRECT
// (blkwork: sequential 1 MiB writes, sequential 1 MiB reads, 4 KiB random reads, queue depth 1):
// one served by rxvmm-vhost-blk, the other by qemu-storage-daemon (the C reference), both in the same
// boot (which of them is /dev/vda swaps from boot to boot). Each workload runs on one disk and then at once on the other, alternating which goes
// first from round to round, so every pair of figures is taken seconds apart: on a shared 2-core
// machine the load moves a lot between minutes, much less between neighbouring seconds. Prints both
// back-ends' throughput, the per-round ratio (median and range; target >= 1.0x), each back-end's peak
// RSS without guest RAM and its CPU time per GiB moved (target: rxvmm's at most qemu-storage-daemon's).
//
//   node bench/dist/bench/qemu-blk.js [--rounds N] [--boots N] [--only qemu-storage-daemon|rxvmm-vhost-blk]
//                                     [--seq-write 512M] [--seq-read 1G] [--rand-reads 5000] [--json]
//                                     [--profile DIR]
//
// --profile DIR samples both back-ends with Linux perf during the run (rxvmm-vhost-blk under
// --perf-basic-prof, so its JavaScript has names) and prints, per back-end and workload, where the
// CPU time of a request goes (bench/profile.ts; `node bench/dist/bench/profile.js DIR` prints it
// again; `--record OUT DIR...` pools several runs into one bench record, `--reference DIR` adds runs
// of another tree as the reference). The figures of a profiled run are not comparable with an
// unprofiled one.
//
// Throughput is what the guest measures (CLOCK_MONOTONIC around each step). CPU is read from /proc
// for the disk's back-end when the guest prints the step's BEGIN and RESULT lines: the sum of its
// threads' schedstat (nanoseconds), or utime + stime in 10 ms ticks when a thread exited meanwhile.
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Backend, type BackendKind, rxvmmVhostBlkMissing, startBackend } from '../test/qemu/backends.js';
import { type GuestImage, qemuAvailability, repoRoot } from '../test/qemu/guest-image.js';
import { fillPattern } from '../test/qemu/pattern.js';
import { bootGuest, describeRun } from '../test/qemu/qemu-boot.js';
import { type CpuReading, cpuBetween, MemorySampler, readCpu } from './proc-stats.js';
import { nodeStartup, Profiler, perfMissing, profileRows, summarizeDirs } from './profile.js';

const MiB = 1 << 20;
const GiB = 1 << 30;

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: process.env.RXVMM_BENCH_ROUNDS ?? '3' },
    boots: { type: 'string', default: '2' },
    only: { type: 'string' },
    json: { type: 'boolean', default: false },
    'disk-mib': { type: 'string', default: '512' },
    'seq-write': { type: 'string', default: '512M' },
    'seq-read': { type: 'string', default: '1G' },
    'rand-reads': { type: 'string', default: '5000' },
    profile: { type: 'string' },
  },
});
const rounds = Number(values.rounds);
const boots = Number(values.boots);
const diskMiB = Number(values['disk-mib']);
const workloads = [
  { op: 'seqwrite', label: 'seq write 1 MiB', step: `seqwrite:${values['seq-write']}` },
  { op: 'seqread', label: 'seq read 1 MiB', step: `seqread:${values['seq-read']}` },
  { op: 'randread', label: 'rand read 4 KiB', step: `randread:${values['rand-reads']}` },
] as const;

interface StepFigures {
  round: number;
  bytes: number;
  ops: number;
  ns: number;
  cpuSeconds: number;
}

interface BackendFigures {
  /** Per workload op, one entry per round. */
  steps: Map<string, StepFigures[]>;
  peakOwnKiB: number;
  peakHwmKiB: number;
  peakShmemKiB: number;
}

interface Disk {
  kind: BackendKind;
  dev: string;
  path: string;
  socket: string;
  /** Disks differ in size by a MiB each, so the guest's view tells which back-end is which vdX. */
  bytes: number;
}

/** One boot: every back-end on its own disk, `rounds` rounds of all workloads on all disks. */
async function runBoot(
  image: GuestImage,
  kindsDisks: Disk[],
  figures: Map<BackendKind, BackendFigures>,
  boot: number,
  profiler: Profiler | undefined,
) {
  // Odd boots swap which back-end is /dev/vda, so the PCI slot and probe order favour neither.
  const disks = (boot % 2 ? [...kindsDisks].reverse() : kindsDisks).map((d, i) => ({
    ...d,
    dev: devName(i),
  }));
  const backends = new Map<BackendKind, Backend>();
  const samplers = new Map<BackendKind, MemorySampler>();
  const byDev = new Map(disks.map((d) => [d.dev, d]));
  try {
    for (const d of disks) {
      const b = await startBackend(d.kind, {
        disk: d.path,
        socket: d.socket,
        ...(profiler ? { nodeArgs: ['--perf-basic-prof'] } : {}),
      });
      backends.set(d.kind, b);
      profiler?.attach(d.kind, boot, b.pid);
      samplers.set(d.kind, new MemorySampler(b.pid));
    }
    const steps: string[] = [];
    for (let r = 0; r < rounds; r++) {
      // Rounds alternate which back-end goes first, from the boot's order (swapped each boot): over
      // an even number of boots each leads as many rounds, a boot's first (cold) round included.
      const order = r % 2 ? [...disks].reverse() : disks;
      for (const w of workloads) for (const d of order) steps.push(`${w.step}@${d.dev}`);
    }
    const round = new Map<string, number>(); // per dev+op: rounds seen so far
    let cpuAtBegin: CpuReading | undefined;
    const run = await bootGuest({
      image,
      socket: disks[0]!.socket,
      moreSockets: disks.slice(1).map((d) => d.socket),
      timeoutMs: 600_000,
      steps,
      onEvent: (e) => {
        if (e.kind !== 'begin' && e.kind !== 'result') return;
        const dev = e.kind === 'begin' ? e.begin.dev : e.result.dev;
        const disk = byDev.get(dev);
        if (!disk) return;
        const pid = backends.get(disk.kind)!.pid;
        samplers.get(disk.kind)!.sample();
        if (e.kind === 'begin') {
          cpuAtBegin = readCpu(pid);
          profiler?.begin(disk.kind, boot, e.begin.op);
          return;
        }
        const cpuSeconds = cpuBetween(cpuAtBegin, readCpu(pid));
        if (!e.result.ok) return;
        profiler?.end(disk.kind, boot, e.result.op, e.result.ops ?? 0);
        const key = `${dev} ${e.result.op}`;
        const r = round.get(key) ?? 0;
        round.set(key, r + 1);
        const list = figures.get(disk.kind)!.steps.get(e.result.op) ?? [];
        list.push({
          round: boot * rounds + r,
          bytes: e.result.bytes ?? 0,
          ops: e.result.ops ?? 0,
          ns: e.result.ns ?? 0,
          cpuSeconds,
        });
        figures.get(disk.kind)!.steps.set(e.result.op, list);
      },
    });
    const outputs = [...backends].map(([k, b]) => `--- ${k} ---\n${b.output()}`).join('\n');
    for (const d of disks) {
      const seen = run.devices.get(d.dev);
      if (seen?.bytes !== d.bytes)
        throw new Error(
          `${d.dev} should be ${d.kind}'s ${d.bytes}-byte disk, the guest saw ${JSON.stringify(seen)}`,
        );
    }
    const failed = run.results.filter((r) => !r.ok);
    if (run.guestStatus !== 0 || failed.length > 0 || run.results.length !== steps.length)
      throw new Error(`guest run failed: ${JSON.stringify(failed)}\n${describeRun(run)}\n${outputs}`);
  } finally {
    for (const [kind, s] of samplers) {
      s.stop();
      const f = figures.get(kind)!;
      f.peakOwnKiB = Math.max(f.peakOwnKiB, s.peakOwnKiB);
      f.peakHwmKiB = Math.max(f.peakHwmKiB, s.peakHwmKiB);
      f.peakShmemKiB = Math.max(f.peakShmemKiB, s.peakShmemKiB);
    }
    for (const b of backends.values()) await b.stop();
  }
}

const devName = (i: number) => `/dev/vd${String.fromCharCode(97 + i)}`;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const mibPerSec = (f: StepFigures) => f.bytes / MiB / (f.ns / 1e9);

interface WorkloadSummary {
  mibPerSec: number;
  iops: number;
  cpuSecondsPerGiB: number;
  perRound: number[];
}

interface Summary {
  backend: BackendKind;
  workloads: Record<string, WorkloadSummary>;
  peakRssMiB: number;
  peakHwmMiB: number;
  peakGuestShmemMiB: number;
}

function summarize(kind: BackendKind, f: BackendFigures): Summary {
  const out: Record<string, WorkloadSummary> = {};
  for (const w of workloads) {
    const figs = f.steps.get(w.op) ?? [];
    const bytes = figs.reduce((a, x) => a + x.bytes, 0);
    const cpu = figs.reduce((a, x) => a + x.cpuSeconds, 0);
    out[w.op] = {
      mibPerSec: median(figs.map(mibPerSec)),
      iops: median(figs.map((x) => x.ops / (x.ns / 1e9))),
      cpuSecondsPerGiB: cpu / (bytes / GiB),
      perRound: figs.map(mibPerSec),
    };
  }
  return {
    backend: kind,
    workloads: out,
    peakRssMiB: f.peakOwnKiB / 1024,
    peakHwmMiB: f.peakHwmKiB / 1024,
    peakGuestShmemMiB: f.peakShmemKiB / 1024,
  };
}

/** rxvmm / qsd for each round (the two figures of a round were taken back to back). */
function pairedRatios(op: string, rx: BackendFigures, ref: BackendFigures): number[] {
  const a = new Map((rx.steps.get(op) ?? []).map((f) => [f.round, mibPerSec(f)]));
  return (ref.steps.get(op) ?? []).filter((f) => a.has(f.round)).map((f) => a.get(f.round)! / mibPerSec(f));
}

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

async function main(): Promise<number> {
  const avail = qemuAvailability();
  if (!avail.ok) {
    console.log(`qemu-blk bench skipped: ${avail.reason}`);
    return 0;
  }
  let kinds: BackendKind[] = ['rxvmm-vhost-blk', 'qemu-storage-daemon'];
  if (values.only) kinds = kinds.filter((k) => k === values.only);
  let status = 0;
  const missing = rxvmmVhostBlkMissing();
  if (kinds.includes('rxvmm-vhost-blk') && missing) {
    console.log(`rxvmm-vhost-blk cannot run: ${missing}; measuring qemu-storage-daemon alone`);
    kinds = kinds.filter((k) => k !== 'rxvmm-vhost-blk');
    status = 1;
  }
  if (values.profile !== undefined) {
    const why = perfMissing();
    if (why) {
      console.log(`qemu-blk bench: --profile needs Linux perf: ${why}`);
      return 1;
    }
  }
  const profiler = values.profile === undefined ? undefined : new Profiler(values.profile);
  const dir = mkdtempSync(join(tmpdir(), 'rxvmm-bench-'));
  const loadBefore = loadavg();
  try {
    // Filled disks, so reads return real data (from the host page cache, for both back-ends alike).
    const disks: Disk[] = kinds.map((kind, i) => {
      const bytes = (diskMiB + i) * MiB;
      const path = join(dir, `${kind}.img`);
      const content = new Uint8Array(bytes);
      fillPattern(content, 0, 0xbe4c);
      writeFileSync(path, content);
      return {
        kind,
        dev: devName(i),
        path,
        socket: join(dir, `${kind}.sock`),
        bytes,
      };
    });
    const figures = new Map<BackendKind, BackendFigures>(
      kinds.map((k) => [k, { steps: new Map(), peakOwnKiB: 0, peakHwmKiB: 0, peakShmemKiB: 0 }]),
    );
    for (let boot = 0; boot < boots; boot++) {
      await runBoot(avail.value, disks, figures, boot, profiler);
      process.stderr.write(`boot ${boot + 1}/${boots} done (${rounds} rounds)\n`);
    }
    const summaries = kinds.map((k) => summarize(k, figures.get(k)!));
    const rx = figures.get('rxvmm-vhost-blk');
    const ref = figures.get('qemu-storage-daemon');
    const ratios = Object.fromEntries(
      workloads.map((w) => [w.op, rx && ref ? pairedRatios(w.op, rx, ref) : []]),
    );
    if (values.json) console.log(JSON.stringify({ summaries, ratios }, null, 2));
    printTable(summaries, ratios, `load average ${loadBefore} before, ${loadavg()} after`);
    if (rx && ref) recordFigures(rx, ref, summaries);
    if (profiler) {
      await profiler.finish();
      const text = summarizeDirs([profiler.dir]);
      writeFileSync(join(profiler.dir, 'per-request.txt'), `${text}\n`);
      console.log(`\nwhere the CPU time of a request goes (perf, ${profiler.dir}/per-request.txt):\n${text}`);
      const labels = Object.fromEntries(workloads.map((w) => [w.op, w.label]));
      writeFileSync(join(profiler.dir, 'run.json'), `${JSON.stringify({ labels })}\n`);
      const record = profileRecord(profileRows([profiler.dir], labels), loadBefore, loadavg());
      writeFileSync(join(profiler.dir, 'record.json'), `${JSON.stringify(record, null, 2)}\n`);
      console.log(`the same as a bench record (bench/README.md): ${profiler.dir}/record.json`);
    }
  } catch (err) {
    console.log(`qemu-blk bench failed: ${(err as Error).message}`);
    status = 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return status;
}

/** A `pnpm bench` record (bench/README.md) holding a profiled run's figures, for README tables. */
function profileRecord(figures: Record<string, unknown>[], loadBefore: string, loadAfter: string) {
  const git = (...args: string[]) =>
    spawnSync('git', args, { cwd: join(repoRoot), encoding: 'utf8' }).stdout?.trim() ?? '';
  const numbers = (l: string) => l.split(' ').map(Number);
  return {
    format: 'rxvmm-bench/1',
    commit: git('rev-parse', 'HEAD') || 'unknown',
    dirty: git('status', '--porcelain', '--untracked-files=no') !== '',
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      kernel: release(),
      memoryGiB: Number((totalmem() / 2 ** 30).toFixed(1)),
    },
    loadAverage: { before: numbers(loadBefore), after: numbers(loadAfter) },
    yardstick: nodeStartup(),
    benches: [
      { bench: 'vhost-backend-profile', dir: 'apps/vhost-backend', status: 0, figures: figures.length },
    ],
    figures,
  };
}

function printTable(summaries: Summary[], ratios: Record<string, number[]>, load: string): void {
  const rx = summaries.find((s) => s.backend === 'rxvmm-vhost-blk');
  const ref = summaries.find((s) => s.backend === 'qemu-storage-daemon');
  const f = (n: number | undefined, d = 1) => (n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(d));
  const ratioText = (xs: number[]) =>
    xs.length === 0
      ? '-'
      : `${median(xs).toFixed(2)}x [${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}]`;
  console.log(
    `\nvhost-user-blk: QEMU (TCG) + Linux guest, O_DIRECT, queue depth 1; rxvmm-vhost-blk and qemu-storage-daemon ` +
      `on /dev/vda + /dev/vdb of one boot (swapped each boot), alternating; ${boots} boot(s) x ${rounds} round(s); ${load}` +
      `\nmedians; ratio = rxvmm / qsd per round (pairs taken back to back): median [min-max]` +
      `\n${'workload'.padEnd(17)}${'rxvmm MiB/s'.padStart(12)}${'qsd MiB/s'.padStart(11)}${'ratio'.padStart(20)}` +
      `${'rxvmm IOPS'.padStart(12)}${'qsd IOPS'.padStart(10)}${'rxvmm CPU s/GiB'.padStart(17)}${'qsd CPU s/GiB'.padStart(15)}`,
  );
  for (const w of workloads) {
    const a = rx?.workloads[w.op];
    const b = ref?.workloads[w.op];
    console.log(
      `${w.label.padEnd(17)}${f(a?.mibPerSec).padStart(12)}${f(b?.mibPerSec).padStart(11)}${ratioText(ratios[w.op] ?? []).padStart(20)}` +
        `${f(a?.iops, 0).padStart(12)}${f(b?.iops, 0).padStart(10)}${f(a?.cpuSecondsPerGiB, 3).padStart(17)}${f(b?.cpuSecondsPerGiB, 3).padStart(15)}`,
    );
  }
  for (const s of summaries)
    console.log(
      `${s.backend}: peak RSS without guest RAM ${s.peakRssMiB.toFixed(1)} MiB` +
        ` (max of VmRSS - RssShmem, sampled every 10 ms and at each step; guest RAM pages it had mapped:` +
        ` ${s.peakGuestShmemMiB.toFixed(1)} MiB RssShmem; VmHWM with them ${s.peakHwmMiB.toFixed(1)} MiB)`,
    );
  if (rx && ref) {
    const worst = Math.min(...workloads.map((w) => median(ratios[w.op] ?? [])));
    const cpu = Math.max(
      ...workloads.map((w) => rx.workloads[w.op]!.cpuSecondsPerGiB / ref.workloads[w.op]!.cpuSecondsPerGiB),
    );
    console.log(
      `lowest median ratio ${worst.toFixed(2)}x (target >= 1.00x); highest CPU per GiB ratio ${cpu.toFixed(2)}x (target <= 1.00x); ` +
        `rxvmm peak RSS ${rx.peakRssMiB.toFixed(1)} MiB (target < 100 MiB)`,
    );
  }
}

/** The per-round values of `op` for both back-ends, paired by round (taken back to back). */
function paired(op: string, rx: BackendFigures, ref: BackendFigures, pick: (f: StepFigures) => number) {
  const a = new Map((rx.steps.get(op) ?? []).map((f) => [f.round, pick(f)]));
  const pairs = (ref.steps.get(op) ?? [])
    .filter((f) => a.has(f.round))
    .map((f) => [a.get(f.round)!, pick(f)]);
  return { values: pairs.map((p) => p[0]!), reference: pairs.map((p) => p[1]!) };
}

/**
 * The figures, one JSON line each, for `pnpm bench`'s record (scripts/bench.mjs sets BENCH_RECORD;
 * the row format is bench/README.md's, as bench/figures.mjs writes it for the other benchmarks).
 */
function recordFigures(rx: BackendFigures, ref: BackendFigures, summaries: Summary[]): void {
  const file = process.env.BENCH_RECORD;
  if (!file) return;
  const sig = (x: number, d = 4) => (Number.isFinite(x) && x !== 0 ? Number(x.toPrecision(d)) : x);
  const row = (
    figure: string,
    what: string,
    unit: string,
    better: string,
    v: number[],
    r?: number[],
    target?: string,
  ) => {
    const out: Record<string, unknown> = {
      bench: 'vhost-backend',
      figure,
      what,
      unit,
      better,
      value: sig(median(v)),
      min: sig(Math.min(...v)),
      max: sig(Math.max(...v)),
      rounds: v.length,
    };
    if (r && r.length > 0) {
      const ratios = v.map((x, i) => x / r[i]!);
      Object.assign(out, {
        reference: 'qemu-storage-daemon',
        referenceValue: sig(median(r)),
        referenceMin: sig(Math.min(...r)),
        referenceMax: sig(Math.max(...r)),
        ratio: sig(median(v) / median(r), 3),
        ratioMin: sig(Math.min(...ratios), 3),
        ratioMax: sig(Math.max(...ratios), 3),
      });
    }
    if (target) out.target = target;
    return JSON.stringify(out);
  };
  const lines: string[] = [];
  for (const w of workloads) {
    const t = paired(w.op, rx, ref, mibPerSec);
    lines.push(
      row(
        w.op,
        `vhost-user-blk under QEMU + Linux: ${w.label}, O_DIRECT, depth 1`,
        'MiB/s',
        'higher',
        t.values,
        t.reference,
        'ratio >= 1.0',
      ),
    );
    const c = paired(w.op, rx, ref, (f) => f.cpuSeconds / (f.bytes / GiB));
    lines.push(
      row(
        `${w.op}-cpu`,
        `vhost-user-blk back-end CPU per GiB: ${w.label}`,
        's/GiB',
        'lower',
        c.values,
        c.reference,
        'ratio <= 1.0',
      ),
    );
  }
  const rxSummary = summaries.find((s) => s.backend === 'rxvmm-vhost-blk');
  if (rxSummary)
    lines.push(
      row(
        'peak-rss',
        '`rxvmm-vhost-blk` peak RSS without guest RAM',
        'MiB',
        'lower',
        [rxSummary.peakRssMiB],
        undefined,
        '< 100 MiB',
      ),
    );
  appendFileSync(file, `${lines.join('\n')}\n`);
}

process.exitCode = await main();
