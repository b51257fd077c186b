/**
 * @rxvmm/eventfd: Linux eventfds (EventFd, on @rxvmm/sys) and a pure-TypeScript
 * twin with the kernel's semantics (InMemoryEventFd), as RxJS streams.
 */
export { EFD_COUNTER_MAX, IN_MEMORY_FD_BASE, INITVAL_MAX, U64_MAX } from './constants.js';
export { InMemoryEventFd } from './in-memory-event-fd.js';
export type { EventFdLike, EventFdOptions, EventFdWatcher } from './types.js';
