// Resource figures of a back-end process from /proc, for the benchmark.
//
// Memory: a vhost-user back-end maps the whole guest RAM (a shared memfd), and every guest page it
// touches shows up in its VmRSS/VmHWM; that is the guest's memory, not the back-end's. Such pages
// are shmem, so the kernel counts them under RssShmem. The back-end's own footprint is therefore
// VmRSS - RssShmem (= RssAnon + RssFile: heap, stacks, code, libraries), sampled while it runs; the
// peak of that is what we report. VmHWM has no per-kind split, so it is shown only for reference.
//
// CPU: utime + stime from /proc/PID/stat, in clock ticks (USER_HZ, 100 on Linux x86): it covers
// every thread of the process, including exited ones; or, to the nanosecond, the sum of each live
// thread's schedstat when no thread exited between two readings (readCpu, cpuBetween).
import { readdirSync, readFileSync } from 'node:fs';

export const USER_HZ = 100;

export interface MemorySample {
  vmRssKiB: number;
  vmHwmKiB: number;
  rssAnonKiB: number;
  rssFileKiB: number;
  rssShmemKiB: number;
}

export function readMemory(pid: number): MemorySample | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined; // the process is gone
  }
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return {
    vmRssKiB: field('VmRSS'),
    vmHwmKiB: field('VmHWM'),
    rssAnonKiB: field('RssAnon'),
    rssFileKiB: field('RssFile'),
    rssShmemKiB: field('RssShmem'),
  };
}

/** utime + stime of the whole process, in seconds; undefined when it is gone. */
export function readCpuSeconds(pid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may hold spaces and parentheses: count fields after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  return (Number(rest[11]) + Number(rest[12])) / USER_HZ;
}

/**
 * The CPU time of a process right now, for a difference between two readings: `ticks` is
 * utime + stime of /proc/PID/stat (every thread, exited ones too, but in 10 ms ticks: a 1 MiB
 * step of the benchmark uses about ten of them), `threads` the sum of each live thread's
 * /proc/PID/task/TID/schedstat (nanoseconds on the CPU), with the thread ids it summed.
 */
export interface CpuReading {
  ticks: number;
  threadSeconds: number;
  tids: string;
}

export function readCpu(pid: number): CpuReading | undefined {
  const ticks = readCpuSeconds(pid);
  if (ticks === undefined) return undefined;
  let ns = 0;
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`).sort();
    for (const tid of tids)
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return { ticks, threadSeconds: Number.NaN, tids: '' }; // a thread came or went while reading
  }
  return { ticks, threadSeconds: ns / 1e9, tids: tids.join(' ') };
}

/**
 * CPU seconds between two readings: the nanosecond sum when the same threads were alive at both
 * (none exited in between, whose time the sum would miss), else the tick count.
 */
export function cpuBetween(a: CpuReading | undefined, b: CpuReading | undefined): number {
  if (a === undefined || b === undefined) return Number.NaN;
  if (a.tids !== '' && a.tids === b.tids) return b.threadSeconds - a.threadSeconds;
  return b.ticks - a.ticks;
}

/** Samples memory every `intervalMs` and on demand; keeps the peaks. */
export class MemorySampler {
  peakOwnKiB = 0;
  peakHwmKiB = 0;
  peakShmemKiB = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly pid: number,
    intervalMs = 10,
  ) {
    this.#timer = setInterval(() => this.sample(), intervalMs);
    this.sample();
  }

  sample(): void {
    const m = readMemory(this.pid);
    if (!m) return;
    this.peakOwnKiB = Math.max(this.peakOwnKiB, m.vmRssKiB - m.rssShmemKiB);
    this.peakHwmKiB = Math.max(this.peakHwmKiB, m.vmHwmKiB);
    this.peakShmemKiB = Math.max(this.peakShmemKiB, m.rssShmemKiB);
  }

  stop(): void {
    this.sample();
    clearInterval(this.#timer);
  }
}
