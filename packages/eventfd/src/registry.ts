// The process-wide (per JavaScript realm: each worker thread has its own)
// table of open SoftEventFds, keyed by their synthetic fd numbers. It lives
// on globalThis under a registered symbol so that two copies of this module
// (say src/ under vitest and dist/ in a dependency) still share one fd space.
import { IN_MEMORY_FD_BASE } from './constants.js';

interface Registry<T> {
  next: number;
  open: Map<number, T>;
}

const KEY = Symbol.for('@rxvmm/eventfd/in-memory-registry');

function registry<T>(): Registry<T> {
  const holder = globalThis as unknown as Record<symbol, Registry<T> | undefined>;
  let table = holder[KEY];
  if (table === undefined) {
    table = { next: IN_MEMORY_FD_BASE, open: new Map() };
    holder[KEY] = table;
  }
  return table;
}

/** Allocates a fresh synthetic fd (never reused within the realm) and registers `owner` under it. */
export function allocateFd<T>(owner: T): number {
  const table = registry<T>();
  const fd = table.next++;
  table.open.set(fd, owner);
  return fd;
}

/** Forgets `fd` (on close). */
export function releaseFd(fd: number): void {
  registry().open.delete(fd);
}

/** The open owner of `fd`, if any. */
export function lookupFd<T>(fd: number): T | undefined {
  return registry<T>().open.get(fd);
}
