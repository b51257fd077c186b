/**
 * @rxvmm/kvm-linux/prepare: `prepareVcpu`, the first thing a VMM's entry can run. It starts a vCPU
 * worker before the rest of the VMM loads: this module loads no native addon and none of the
 * runner, so the worker's boot (the longest step before a guest's first instruction) overlaps with
 * loading the VMM and setting up KVM. Hand the result to `VcpuRunner.start({ prepared })`.
 */
export { PreparedVcpu, type PrepareVcpuOptions, prepareVcpu } from './runner/prepared.js';
