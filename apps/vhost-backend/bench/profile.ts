// Where each back-end's CPU time goes per request, for `qemu-blk.ts --profile DIR`.
//
// Each back-end process is sampled with Linux perf (`perf record -e cpu-clock -g -p PID`, every
// thread, kernel and user stacks, timestamps on CLOCK_MONOTONIC as process.hrtime is), and
// rxvmm-vhost-blk runs with `--perf-basic-prof` so its JIT-compiled JavaScript has names. The
// benchmark notes when each workload step began and ended on each disk; a sample counts for the
// step whose window holds it, and each step's samples are divided by its requests. cpu-clock is
// a software event (this class of VM has no hardware counters: `perf stat -e instructions` says
// "not supported"): a sample that falls while interrupts are off is taken when they come back on,
// so the cost of a context switch shows up at `finish_task_switch`, which is why "sleep, wake-up"
// below is classified by the whole kernel stack and not by its leaf.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const HZ = 2999;

export interface StepWindow {
  backend: string;
  boot: number;
  op: string;
  /** CLOCK_MONOTONIC, ns. */
  start: string;
  end: string;
  requests: number;
}

/** Why perf cannot sample here, or undefined when it can. */
export function perfMissing(): string | undefined {
  const r = spawnSync('perf', ['record', '-q', '-e', 'cpu-clock', '-o', '/dev/null', 'true'], {
    encoding: 'utf8',
  });
  if (r.error) return `perf not found (${r.error.message}; Debian: apt-get install linux-perf)`;
  if (r.status !== 0) return `perf record failed: ${(r.stderr || '').trim().split('\n').slice(-1)[0]}`;
  return undefined;
}

/** Samples back-end processes for one benchmark run and keeps the step windows. */
export class Profiler {
  readonly #recorders: { child: ChildProcess; exited: Promise<void> }[] = [];
  readonly #open = new Map<string, bigint>();
  readonly windows: StepWindow[] = [];

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  /** Starts sampling `pid` (every thread) until it exits. */
  attach(backend: string, boot: number, pid: number): void {
    const out = join(this.dir, `${backend}-boot${boot}.data`);
    const child = spawn(
      'perf',
      [
        'record',
        '-q',
        '-k',
        'CLOCK_MONOTONIC',
        '-e',
        'cpu-clock',
        '-F',
        String(HZ),
        '-g',
        '-p',
        String(pid),
        '-o',
        out,
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    this.#recorders.push({ child, exited: new Promise((resolve) => child.on('exit', () => resolve())) });
  }

  begin(backend: string, boot: number, op: string): void {
    this.#open.set(`${backend} ${boot} ${op}`, process.hrtime.bigint());
  }

  end(backend: string, boot: number, op: string, requests: number): void {
    const key = `${backend} ${boot} ${op}`;
    const start = this.#open.get(key);
    if (start === undefined) return;
    this.#open.delete(key);
    this.windows.push({
      backend,
      boot,
      op,
      start: String(start),
      end: String(process.hrtime.bigint()),
      requests,
    });
  }

  /** Waits for perf to write its files (each ends when its process does; SIGINT after `graceMs`). */
  async finish(graceMs = 10_000): Promise<void> {
    const pending = this.#recorders.splice(0);
    const timer = setTimeout(() => {
      for (const r of pending) r.child.kill('SIGINT');
    }, graceMs);
    await Promise.all(pending.map((r) => r.exited));
    clearTimeout(timer);
    writeFileSync(join(this.dir, 'steps.json'), `${JSON.stringify(this.windows, null, 1)}\n`);
  }
}

interface Sample {
  tid: number;
  pid: number;
  /** CLOCK_MONOTONIC, ns. */
  t: bigint;
  /** "symbol (dso)" frames, leaf first. */
  frames: string[];
}

/** `perf script` of one data file, parsed. */
function readSamples(file: string): Sample[] {
  const r = spawnSync('perf', ['script', '-i', file, '-F', 'pid,tid,time,ip,sym,dso', '--ns'], {
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  if (r.status !== 0) throw new Error(`perf script -i ${file}: ${r.stderr}`);
  const samples: Sample[] = [];
  let cur: Sample | null = null;
  for (const line of r.stdout.split('\n')) {
    if (line.trim() === '') {
      if (cur) samples.push(cur);
      cur = null;
      continue;
    }
    if (cur === null) {
      const m = /^\s*(\d+)\/(\d+)\s+(\d+)\.(\d+):/.exec(line);
      if (m)
        cur = {
          pid: Number(m[1]),
          tid: Number(m[2]),
          t: BigInt(m[3]!) * 1_000_000_000n + BigInt(m[4]!.padEnd(9, '0')),
          frames: [],
        };
      continue;
    }
    const f = /^\s*[0-9a-f]+\s+(.*)$/.exec(line);
    if (f) cur.frames.push(f[1]!.replace(/\+0x[0-9a-f]+ /, ' '));
  }
  if (cur) samples.push(cur);
  return samples;
}

const KERNEL = /\(\[kernel\.kallsyms\]\)$/;

/** What a sample was doing, by its stack: the syscall it is in, else what user-space code. */
export function classify(frames: readonly string[], mainThread: boolean): string {
  const leaf = frames[0] ?? '';
  if (KERNEL.test(leaf)) {
    const stack = frames.join('\n');
    if (/eventfd_write/.test(stack)) return 'kernel: eventfd write (the call: wakes the frontend)';
    if (/eventfd_read/.test(stack)) return 'kernel: eventfd read (the kick)';
    if (/sys_fdatasync|sys_fsync|do_fsync/.test(stack)) return 'kernel: fdatasync';
    // A file transfer, by the functions every preadv/pwritev/pread/pwrite path passes through
    // (the syscall entry itself is often inlined away).
    const fileIo =
      /do_preadv|do_pwritev|ksys_pread64|ksys_pwrite64|vfs_readv|vfs_writev|vfs_iter_(read|write)|filemap_read|generic_perform_write|io_uring|aio_(read|write)/;
    if (fileIo.test(stack)) return 'kernel: preadv/pwritev (copy, page cache)';
    if (/epoll_wait|epoll_pwait|sys_ppoll|sys_poll|sys_futex|schedule\b|finish_task_switch/.test(stack))
      return 'kernel: sleep, wake-up, context switch';
    if (/exc_page_fault|handle_mm_fault/.test(stack)) return 'kernel: page faults';
    return 'kernel: other';
  }
  if (
    /^v8::internal::(compiler|maglev|baseline|interpreter|Compiler|Parser|Scanner|OptimizingCompile|Bytecode)|Builtins_CompileLazy|GraphReducer/.test(
      leaf,
    )
  )
    return 'V8 JIT compiler';
  if (
    /^v8::internal::\S*(Heap|Scaveng|MarkCompact|Marking|Sweep|Evacuat|Compactor|ArrayBufferSweeper|MemoryAllocator|GCTracer)/.test(
      leaf,
    )
  )
    return 'V8 garbage collector';
  if (/\(\/tmp\/perf-\d+\.map\)$|^Builtins_|^JS:|^(Lazy|Eval|Function):/.test(leaf))
    return mainThread ? 'JavaScript (JIT code, V8 builtins)' : 'JavaScript (other threads)';
  if (/\((\S*\/node|\S*rxvmm_sys\.node|\S*libuv\S*|\S*libstdc\+\+\S*)\)$/.test(leaf))
    return 'Node, V8 runtime, libuv, addon (C++)';
  if (/\((\S*\/libc\.so\S*|\S*ld-linux\S*|\[vdso\])\)$/.test(leaf)) return 'libc, vdso';
  return 'the program (C) and its libraries';
}

/** The classes of `classify`, in table order, with the key of their record figure. */
export const CLASSES: readonly (readonly [key: string, label: string])[] = [
  ['js', 'JavaScript (JIT code, V8 builtins)'],
  ['runtime', 'Node, V8 runtime, libuv, addon (C++)'],
  ['jit', 'V8 JIT compiler'],
  ['gc', 'V8 garbage collector'],
  ['js-threads', 'JavaScript (other threads)'],
  ['program', 'the program (C) and its libraries'],
  ['libc', 'libc, vdso'],
  ['file-io', 'kernel: preadv/pwritev (copy, page cache)'],
  ['sleep', 'kernel: sleep, wake-up, context switch'],
  ['call', 'kernel: eventfd write (the call: wakes the frontend)'],
  ['kick', 'kernel: eventfd read (the kick)'],
  ['fdatasync', 'kernel: fdatasync'],
  ['faults', 'kernel: page faults'],
  ['kernel-other', 'kernel: other'],
];

/** One step's samples: per class, and all of them. */
export interface WindowProfile extends StepWindow {
  /** The step's rank among the steps of its back-end, boot and workload (0: the first round). */
  round: number;
  samples: Map<string, number>;
  total: number;
}

/** Every step of a finished `--profile DIR` run with its samples, by class. */
export function attribute(dir: string): WindowProfile[] {
  const windows = JSON.parse(readFileSync(join(dir, 'steps.json'), 'utf8')) as StepWindow[];
  const out: WindowProfile[] = windows.map((w) => ({
    ...w,
    round: windows.filter((x) => x.backend === w.backend && x.boot === w.boot && x.op === w.op).indexOf(w),
    samples: new Map(),
    total: 0,
  }));
  for (const file of new Set(windows.map((w) => `${w.backend}-boot${w.boot}.data`))) {
    const mine = out
      .filter((w) => `${w.backend}-boot${w.boot}.data` === file)
      .map((w) => ({ w, start: BigInt(w.start), end: BigInt(w.end) }));
    for (const s of readSamples(join(dir, file))) {
      const hit = mine.find((x) => s.t >= x.start && s.t <= x.end);
      if (!hit) continue;
      const c = classify(s.frames, s.tid === s.pid);
      hit.w.samples.set(c, (hit.w.samples.get(c) ?? 0) + 1);
      hit.w.total++;
    }
  }
  return out;
}

/** CPU µs per request of `samples` over `requests`. */
const perRequest = (samples: number, requests: number) => ((samples / HZ) * 1e6) / requests;

/** Per back-end and workload, over all steps of the runs: CPU µs per request by class, and the total. */
export function summarizeDirs(dirs: readonly string[]): string {
  const steps = dirs.flatMap(attribute);
  const lines: string[] = [];
  for (const backend of new Set(steps.map((w) => w.backend))) {
    for (const op of new Set(steps.map((w) => w.op))) {
      const ws = steps.filter((w) => w.backend === backend && w.op === op);
      if (ws.length === 0) continue;
      const requests = ws.reduce((a, w) => a + w.requests, 0);
      const total = ws.reduce((a, w) => a + w.total, 0);
      lines.push(
        `${backend} ${op}: ${perRequest(total, requests).toFixed(1)} µs of CPU per request (${requests} requests, ${ws.length} steps)`,
      );
      const byClass = CLASSES.map(
        ([, label]) => [label, ws.reduce((a, w) => a + (w.samples.get(label) ?? 0), 0)] as const,
      );
      for (const [label, n] of byClass.filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]))
        lines.push(`  ${perRequest(n, requests).toFixed(1).padStart(7)} µs  ${label}`);
    }
  }
  return lines.join('\n');
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const sig = (x: number, d = 3) => (Number.isFinite(x) && x !== 0 ? Number(x.toPrecision(d)) : x);

/**
 * rxvmm-vhost-blk's CPU µs per request of profiled runs, as `pnpm bench` record rows
 * (bench/README.md), bench `vhost-backend-profile`: per workload, the whole of it and each class
 * (median and range over its steps, one per round). With `reference`, the same from other runs
 * (another tree: before a change) is each row's reference, so the ratio says what the change did;
 * runs are not paired round by round, so the ratio has no range. qemu-storage-daemon is not a
 * reference here: perf's own cost per context switch weighs on it, which switches threads two or
 * three times per request (its profiled CPU is well above its unprofiled CPU).
 */
export function profileRows(
  dirs: readonly string[],
  labels: Record<string, string>,
  reference?: { name: string; dirs: readonly string[] },
): Record<string, unknown>[] {
  const rxOf = (ds: readonly string[]) =>
    ds.flatMap(attribute).filter((w) => w.backend === 'rxvmm-vhost-blk');
  const steps = rxOf(dirs);
  const refSteps = reference ? rxOf(reference.dirs) : [];
  const rows: Record<string, unknown>[] = [];
  for (const op of Object.keys(labels)) {
    const mine = steps.filter((w) => w.op === op);
    const theirs = refSteps.filter((w) => w.op === op);
    if (mine.length === 0) continue;
    const values = (ws: WindowProfile[], label?: string) =>
      ws.map((w) => perRequest(label === undefined ? w.total : (w.samples.get(label) ?? 0), w.requests));
    const row = (figure: string, what: string, label?: string) => {
      const v = values(mine, label);
      const r = values(theirs, label);
      const out: Record<string, unknown> = {
        bench: 'vhost-backend-profile',
        figure,
        what,
        unit: 'µs/request',
        better: 'lower',
        value: sig(median(v)),
        min: sig(Math.min(...v)),
        max: sig(Math.max(...v)),
        rounds: v.length,
      };
      if (reference && r.length > 0) {
        Object.assign(out, {
          reference: reference.name,
          referenceValue: sig(median(r)),
          referenceMin: sig(Math.min(...r)),
          referenceMax: sig(Math.max(...r)),
        });
        if (median(r) > 0) {
          const ratio = sig(median(v) / median(r));
          Object.assign(out, { ratio, ratioMin: ratio, ratioMax: ratio });
        }
      }
      return out;
    };
    rows.push(row(`${op}`, `${labels[op]}: all CPU per request`));
    for (const [key, label] of CLASSES) {
      const seen = [...mine, ...theirs].some(
        (w) => (w.samples.get(label) ?? 0) / w.requests >= HZ / 1e6 / 10,
      );
      if (seen) rows.push(row(`${op}-${key}`, `${labels[op]}: ${label}`, label));
    }
  }
  return rows;
}

/** `node -e 0`, process start to exit, 11 times: the machine's yardstick, as scripts/bench.mjs takes it. */
export function nodeStartup(runs = 11): Record<string, unknown> {
  const ms: number[] = [];
  spawnSync(process.execPath, ['-e', '0']);
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    spawnSync(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const r1 = (x: number) => Number(x.toFixed(1));
  return {
    figure: 'node -e 0',
    unit: 'ms',
    value: r1(median(ms)),
    min: r1(Math.min(...ms)),
    max: r1(Math.max(...ms)),
    rounds: runs,
  };
}

/**
 * One record of several profiled runs of the same tree (`--record OUT DIR...`): the first run's
 * commit, machine and yardstick, the load average before the first and after the last, the steps
 * of all of them; with `reference`, runs of another tree as each figure's reference.
 */
export function pooledRecord(
  dirs: readonly string[],
  reference?: { name: string; dirs: readonly string[] },
): Record<string, unknown> {
  const records = dirs.map((d) => JSON.parse(readFileSync(join(d, 'record.json'), 'utf8')));
  const labels = JSON.parse(readFileSync(join(dirs[0]!, 'run.json'), 'utf8')).labels as Record<
    string,
    string
  >;
  const first = records[0];
  const figures = profileRows(dirs, labels, reference);
  return {
    ...first,
    loadAverage: { before: first.loadAverage.before, after: records.at(-1).loadAverage.after },
    benches: [
      { bench: 'vhost-backend-profile', dir: 'apps/vhost-backend', status: 0, figures: figures.length },
    ],
    figures,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals: dirs } = parseArgs({
    allowPositionals: true,
    options: {
      record: { type: 'string' },
      reference: { type: 'string', multiple: true },
      'reference-name': { type: 'string', default: 'before' },
    },
  });
  if (dirs.length === 0) {
    console.error(
      'usage: node bench/dist/bench/profile.js [--record OUT [--reference DIR]... [--reference-name NAME]] DIR...\n' +
        '  DIR: a qemu-blk.js --profile DIR run; several of one tree are pooled; --reference: runs of another tree',
    );
    process.exit(2);
  }
  console.log(summarizeDirs(dirs));
  if (values.record !== undefined) {
    const reference = values.reference && { name: values['reference-name'], dirs: values.reference };
    writeFileSync(values.record, `${JSON.stringify(pooledRecord(dirs, reference), null, 2)}\n`);
    console.log(`record of ${dirs.length} run(s): ${values.record}`);
  }
}
