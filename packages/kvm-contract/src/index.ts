/** `@rxvmm/kvm-contract`: the backend contract suite and its fixture types. */

export { type DriveOptions, type DriveResult, drive } from './drive.js';
export type { ContractEventFd } from './eventfd-ref.js';
export * from './fixture.js';
export { describeKvmContract } from './suite.js';
