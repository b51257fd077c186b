/** `@rxvmm/kvm/contract`: the backend contract suite and its fixture types. */
export * from './fixture.js';
export type { ContractEventFd } from './eventfd-ref.js';
export { describeKvmContract } from './suite.js';
export { drive, type DriveOptions, type DriveResult } from './drive.js';
