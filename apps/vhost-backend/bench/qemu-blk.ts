// Benchmark: a real Linux guest under QEMU (TCG) drives /dev/vda with O_DIRECT (blkwork: sequential
// 1 MiB writes, sequential 1 MiB reads, 4 KiB random reads at queue depth 1) through a vhost-user-blk
// back-end: rxvmm-vhost-blk and qemu-storage-daemon (the C reference) in the same run, alternating
// which goes first in each round. Prints throughput per back-end and the ratio (target >= 0.8x),
// each back-end's peak RSS without guest RAM and its CPU time per GiB moved.
//
//   node bench/dist/bench/qemu-blk.js [--rounds N] [--only qemu-storage-daemon|rxvmm-vhost-blk] [--json]
//
// Throughput is what the guest measures (CLOCK_MONOTONIC around each step). CPU is sampled from
// /proc/PID/stat exactly when the guest prints each step's BEGIN and RESULT lines.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type BackendKind, rxvmmVhostBlkMissing, startBackend } from '../test/qemu/backends.js';
import { qemuAvailability } from '../test/qemu/guest-image.js';
import { fillPattern } from '../test/qemu/pattern.js';
import { bootGuest, describeRun } from '../test/qemu/qemu-boot.js';
import { MemorySampler, readCpuSeconds } from './proc-stats.js';

const MiB = 1 << 20;
const GiB = 1 << 30;

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: process.env.RXVMM_BENCH_ROUNDS ?? '3' },
    only: { type: 'string' },
    json: { type: 'boolean', default: false },
    'disk-mib': { type: 'string', default: '512' },
    'seq-write': { type: 'string', default: '512M' },
    'seq-read': { type: 'string', default: '1G' },
    'rand-reads': { type: 'string', default: '8000' },
  },
});
const rounds = Number(values.rounds);
const diskBytes = Number(values['disk-mib']) * MiB;
const workloads = [
  { op: 'seqwrite', label: 'seq write 1 MiB', step: `seqwrite:${values['seq-write']}` },
  { op: 'seqread', label: 'seq read 1 MiB', step: `seqread:${values['seq-read']}` },
  { op: 'randread', label: 'rand read 4 KiB', step: `randread:${values['rand-reads']}` },
] as const;

interface StepFigures {
  bytes: number;
  ops: number;
  ns: number;
  cpuSeconds: number;
}

interface RunFigures {
  steps: Map<string, StepFigures>;
  peakOwnKiB: number;
  peakHwmKiB: number;
  peakShmemKiB: number;
}

async function runOnce(kind: BackendKind, dir: string, disk: string): Promise<RunFigures> {
  const avail = qemuAvailability();
  if (!avail.ok) throw new Error(avail.reason);
  const socket = join(dir, `${kind}.sock`);
  const backend = await startBackend(kind, { disk, socket });
  const sampler = new MemorySampler(backend.pid);
  const steps = new Map<string, StepFigures>();
  let cpuAtBegin = 0;
  try {
    const run = await bootGuest({
      image: avail.value,
      socket,
      timeoutMs: 300_000,
      steps: workloads.map((w) => w.step),
      onEvent: (e) => {
        if (e.kind === 'begin') {
          cpuAtBegin = readCpuSeconds(backend.pid) ?? Number.NaN;
          sampler.sample();
        } else if (e.kind === 'result') {
          const cpu = (readCpuSeconds(backend.pid) ?? Number.NaN) - cpuAtBegin;
          sampler.sample();
          if (e.result.ok)
            steps.set(e.result.op, {
              bytes: e.result.bytes ?? 0,
              ops: e.result.ops ?? 0,
              ns: e.result.ns ?? 0,
              cpuSeconds: cpu,
            });
        }
      },
    });
    if (run.guestStatus !== 0 || steps.size !== workloads.length)
      throw new Error(`${kind}: guest run failed\n${describeRun(run)}\n--- ${kind} ---\n${backend.output()}`);
  } finally {
    sampler.stop();
    await backend.stop();
  }
  return {
    steps,
    peakOwnKiB: sampler.peakOwnKiB,
    peakHwmKiB: sampler.peakHwmKiB,
    peakShmemKiB: sampler.peakShmemKiB,
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Summary {
  backend: BackendKind;
  workloads: Record<string, { mibPerSec: number; iops: number; cpuSecondsPerGiB: number; samples: number[] }>;
  peakRssMiB: number;
  peakHwmMiB: number;
  peakGuestShmemMiB: number;
}

function summarize(kind: BackendKind, runs: RunFigures[]): Summary {
  const out: Summary['workloads'] = {};
  for (const w of workloads) {
    const figs = runs.map((r) => r.steps.get(w.op)!);
    const rates = figs.map((f) => f.bytes / MiB / (f.ns / 1e9));
    const bytes = figs.reduce((a, f) => a + f.bytes, 0);
    const cpu = figs.reduce((a, f) => a + f.cpuSeconds, 0);
    out[w.op] = {
      mibPerSec: median(rates),
      iops: median(figs.map((f) => f.ops / (f.ns / 1e9))),
      cpuSecondsPerGiB: cpu / (bytes / GiB),
      samples: rates,
    };
  }
  return {
    backend: kind,
    workloads: out,
    peakRssMiB: Math.max(...runs.map((r) => r.peakOwnKiB)) / 1024,
    peakHwmMiB: Math.max(...runs.map((r) => r.peakHwmKiB)) / 1024,
    peakGuestShmemMiB: Math.max(...runs.map((r) => r.peakShmemKiB)) / 1024,
  };
}

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
  const dir = mkdtempSync(join(tmpdir(), 'rxvmm-bench-'));
  try {
    // A filled disk, so reads return real data from the host page cache for both back-ends.
    const disk = join(dir, 'disk.img');
    const chunk = new Uint8Array(diskBytes);
    fillPattern(chunk, 0, 0xbe4c);
    writeFileSync(disk, chunk);

    const runs = new Map<BackendKind, RunFigures[]>(kinds.map((k) => [k, []]));
    const failed = new Set<BackendKind>();
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 ? [...kinds].reverse() : kinds;
      for (const kind of order) {
        if (failed.has(kind)) continue;
        try {
          runs.get(kind)!.push(await runOnce(kind, dir, disk));
          process.stderr.write(`round ${round + 1}/${rounds} ${kind} done\n`);
        } catch (err) {
          console.log(`${kind} failed: ${(err as Error).message}`);
          failed.add(kind);
          status = 1;
        }
      }
    }
    const summaries = kinds.filter((k) => !failed.has(k)).map((k) => summarize(k, runs.get(k)!));
    if (values.json) console.log(JSON.stringify(summaries, null, 2));
    printTable(summaries);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return status;
}

function printTable(summaries: Summary[]): void {
  const rx = summaries.find((s) => s.backend === 'rxvmm-vhost-blk');
  const ref = summaries.find((s) => s.backend === 'qemu-storage-daemon');
  const f = (n: number | undefined, d = 1) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(d));
  console.log(
    `\nvhost-user-blk under QEMU ${'(TCG)'} + Linux guest, O_DIRECT, queue depth 1, ${rounds} round(s), median` +
      `\n${'workload'.padEnd(18)}${'rxvmm MiB/s'.padStart(13)}${'qsd MiB/s'.padStart(12)}${'ratio'.padStart(8)}` +
      `${'rxvmm IOPS'.padStart(12)}${'qsd IOPS'.padStart(11)}${'rxvmm CPU s/GiB'.padStart(17)}${'qsd CPU s/GiB'.padStart(15)}`,
  );
  for (const w of workloads) {
    const a = rx?.workloads[w.op];
    const b = ref?.workloads[w.op];
    const ratio = a && b ? a.mibPerSec / b.mibPerSec : undefined;
    console.log(
      `${w.label.padEnd(18)}${f(a?.mibPerSec).padStart(13)}${f(b?.mibPerSec).padStart(12)}${(ratio === undefined ? '-' : `${ratio.toFixed(2)}x`).padStart(8)}` +
        `${f(a?.iops, 0).padStart(12)}${f(b?.iops, 0).padStart(11)}${f(a?.cpuSecondsPerGiB, 3).padStart(17)}${f(b?.cpuSecondsPerGiB, 3).padStart(15)}`,
    );
  }
  for (const s of summaries)
    console.log(
      `${s.backend}: peak RSS without guest RAM ${s.peakRssMiB.toFixed(1)} MiB` +
        ` (max of VmRSS - RssShmem sampled every 10 ms; guest RAM mapped ${s.peakGuestShmemMiB.toFixed(1)} MiB shmem; VmHWM incl. guest pages ${s.peakHwmMiB.toFixed(1)} MiB)`,
    );
  if (rx && ref) {
    const worst = Math.min(
      ...workloads.map((w) => rx.workloads[w.op]!.mibPerSec / ref.workloads[w.op]!.mibPerSec),
    );
    console.log(`lowest ratio ${worst.toFixed(2)}x (target >= 0.80x); rxvmm peak RSS target < 100 MiB`);
  }
}

process.exitCode = await main();
