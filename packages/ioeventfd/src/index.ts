export * from './constants.js';
export { IoEventFd, leValue } from './io-event-fd.js';
export { IoEventFds, type IoEventFdBuses, type KvmIoEventFd } from './io-event-fds.js';
export { type EventFdResolver, type KernelEventFd, resolveInMemoryEventFd } from './resolve.js';
