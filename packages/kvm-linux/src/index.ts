/**
 * @rxvmm/kvm-linux: the rxvmm KVM backend interface (`@rxvmm/kvm`) on
 * /dev/kvm, x86-64 boot helpers, and a runner that drives a vCPU on a worker
 * thread with the VMM's exit handler loaded inside that worker.
 */

export { KICK_SLOT_BYTES, Kicker, KickTarget } from './kick.js';
export { type KvmOptions, kvmAvailability, LinuxKvm, openKvm } from './kvm.js';
export { MAIN_THREAD_RUN_WARNING, type MainThreadRun } from './main-thread-warning.js';
export {
  findRegion,
  type GuestRamDescriptor,
  guestSlice,
  LinuxMemoryRegion,
  MappedRegion,
  mapGuestRam,
  type PrivateMemorySource,
  writeGuest,
} from './memory.js';
export { COUNTER_NAMES, type CounterName, type CounterSnapshot, ExitCounters } from './runner/counters.js';
export type { EarlyRun } from './runner/early-run.js';
export {
  defineVcpuHandler,
  type ExitDecision,
  type VcpuContext,
  type VcpuHandler,
} from './runner/handler.js';
export { PreparedVcpu, type PrepareVcpuOptions } from './runner/prepared.js';
export type { RunEndReason, SerializedError, VcpuRunResult } from './runner/protocol.js';
export { VCPU_WORKER_URL, VcpuRunner, type VcpuRunnerOptions } from './runner/vcpu-runner.js';
export { LinuxVcpu, type VcpuHandover } from './vcpu.js';
export { checkLinuxVcpuState, LINUX_VCPU_STATE_VERSION, type LinuxVcpuState } from './vcpu-state.js';
export { type LinuxMemoryRegionOptions, LinuxVm, type VcpuOptions, type VmUser } from './vm.js';
export { LINUX_VM_STATE_VERSION, type LinuxVmState } from './vm-state.js';
export * from './x86/guest-code.js';
export * from './x86/idt.js';
export * from './x86/local-apic.js';
export * from './x86/long-mode.js';
export * from './x86/memory-map.js';
export * from './x86/real-mode.js';
