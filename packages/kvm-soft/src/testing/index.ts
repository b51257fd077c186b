/**
 * `@rxvmm/kvm-soft/testing`: SoftKvm's fixture for the backend contract suite
 * (`@rxvmm/kvm-contract`, which needs vitest): `describeKvmContract(softKvmFixture)`.
 */
export { softContractGuests, softKvmFixture } from './contract-guests.js';
