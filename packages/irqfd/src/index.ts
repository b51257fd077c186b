// The fd lookup lives in @rxvmm/eventfd (shared with the other software kernel object); re-exported here.
export { type EventFdResolver, type KernelEventFd, resolveSoftEventFd } from '@rxvmm/eventfd';
export { IRQFD_RESAMPLE_IRQ_SOURCE_ID, USERSPACE_IRQ_SOURCE_ID } from './constants.js';
export { type AckNotifier, type InterruptSink, IrqRouter, type ResampleNotifier } from './irq-router.js';
export { IrqFd, Resampler, type Scheduler } from './irqfd.js';
export { IrqFds, type IrqFdsOptions, type KvmIrqFd } from './irqfds.js';
export { defaultX86Routing, type Route, RoutingTable } from './routing.js';
