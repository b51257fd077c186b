/** What the process holds: open fds, memfd/kvm mappings, threads (from /proc/self). */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface ProcessResources {
  fds: string[];
  mappings: string[];
  threads: number;
}

export function processResources(): ProcessResources {
  const fds: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      fds.push(`${fd} -> ${readlinkSync(`/proc/self/fd/${fd}`)}`);
    } catch {
      // the fd readdir itself used, already closed
    }
  }
  const mappings = readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((line) => /rxvmm-guest-ram|kvm-vcpu|anon_inode:kvm/.test(line));
  const threads = readdirSync('/proc/self/task').length;
  return { fds: fds.filter((f) => /kvm|rxvmm-guest-ram/.test(f)), mappings, threads };
}

/** Threads can take a moment to be reaped after a worker's exit event. */
export async function settledThreads(expected: number, tries = 50): Promise<number> {
  let threads = readdirSync('/proc/self/task').length;
  for (let i = 0; i < tries && threads > expected; i++) {
    await new Promise((r) => setTimeout(r, 20));
    threads = readdirSync('/proc/self/task').length;
  }
  return threads;
}
