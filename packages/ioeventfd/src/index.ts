// The fd lookup lives in @rxvmm/eventfd (shared with the other software kernel object); re-exported here.
export { type EventFdResolver, type KernelEventFd, resolveSoftEventFd } from '@rxvmm/eventfd';
export { IoEventFd, leValue } from './io-event-fd.js';
export { type IoEventFdBuses, IoEventFds, type KvmIoEventFd } from './io-event-fds.js';
