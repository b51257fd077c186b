/**
 * @rxvmm/eventfd: Linux eventfds (EventFd, on @rxvmm/sys) and a pure-TypeScript
 * twin with the kernel's semantics (SoftEventFd), as RxJS streams.
 */
import type { EventFd } from './event-fd.js';
import type { SoftEventFd } from './soft-event-fd.js';

export { nativeAvailable } from '#native';
export { EFD_COUNTER_MAX, IN_MEMORY_FD_BASE, INITVAL_MAX, U64_MAX } from './constants.js';
export { EventFd } from './event-fd.js';
export { eventFdWriter, perSignal, signalEach } from './operators.js';
export { type EventFdResolver, type KernelEventFd, resolveSoftEventFd } from './resolve.js';
export { SoftEventFd } from './soft-event-fd.js';
export { checkEventFdState, EVENTFD_STATE_VERSION, type EventFdState } from './state.js';
export type { EventFdLike, EventFdOptions, EventFdWatcher } from './types.js';

/** Either implementation. */
export type AnyEventFd = EventFd | SoftEventFd;
