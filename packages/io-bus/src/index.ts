export { IoBus, NR_IOBUS_DEVS, type RegisterOptions } from './io-bus.js';
export { bsearch, type IoRange, ioRangeCmp } from './range.js';
export type { BusKind, IoDevice, Registration, UnhandledAccess } from './types.js';
