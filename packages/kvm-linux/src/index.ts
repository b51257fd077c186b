/**
 * @rxvmm/kvm-linux: the rxvmm KVM backend interface (`@rxvmm/kvm`) on
 * /dev/kvm, x86-64 boot helpers, and a runner that drives a vCPU on a worker
 * thread with the VMM's exit handler loaded inside that worker.
 */
export { LinuxKvm, kvmAvailability, openKvm } from './kvm.js';
export { LinuxVm, type VmUser } from './vm.js';
export { LinuxVcpu } from './vcpu.js';
export {
  type GuestRamDescriptor,
  LinuxMemoryRegion,
  MappedRegion,
  findRegion,
  guestSlice,
  mapGuestRam,
  writeGuest,
} from './memory.js';
export { KICK_SLOT_BYTES, KickTarget, Kicker } from './kick.js';
export * from './x86/long-mode.js';
export * from './x86/real-mode.js';
export { VcpuRunner, type VcpuRunnerOptions, VCPU_WORKER_URL } from './runner/vcpu-runner.js';
export { defineVcpuHandler, type ExitDecision, type VcpuContext, type VcpuHandler } from './runner/handler.js';
export { COUNTER_NAMES, type CounterName, type CounterSnapshot, ExitCounters } from './runner/counters.js';
export type { RunEndReason, SerializedError, VcpuRunResult } from './runner/protocol.js';
