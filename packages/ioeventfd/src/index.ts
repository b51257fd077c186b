export * from './constants.js';
export { IoEventFd, leValue } from './io-event-fd.js';
export { type IoEventFdBuses, IoEventFds, type KvmIoEventFd } from './io-event-fds.js';
export { type EventFdResolver, type KernelEventFd, resolveInMemoryEventFd } from './resolve.js';
