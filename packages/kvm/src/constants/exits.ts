/** `kvm_run.exit_reason` values the interface types (include/uapi/linux/kvm.h). */
export const EXIT_UNKNOWN = 0;
/** KVM_EXIT_IO: a port I/O instruction the kernel did not handle (`{ kind: 'io' }`). */
export const EXIT_IO = 2;
/** KVM_EXIT_HLT: the guest halted with no in-kernel irqchip to wait on (`{ kind: 'hlt' }`). */
export const EXIT_HLT = 5;
/** KVM_EXIT_MMIO: an access outside RAM that no in-kernel device or ioeventfd took (`{ kind: 'mmio' }`). */
export const EXIT_MMIO = 6;
/** KVM_EXIT_SHUTDOWN: a triple fault (`{ kind: 'shutdown' }`). */
export const EXIT_SHUTDOWN = 8;
/** KVM_EXIT_FAIL_ENTRY: the hardware refused to enter the guest (`{ kind: 'fail-entry' }`). */
export const EXIT_FAIL_ENTRY = 9;
/** KVM_EXIT_INTR: KVM_RUN returned for a signal or `immediate_exit` (a kick; `{ kind: 'intr' }`). */
export const EXIT_INTR = 10;
/** KVM_EXIT_INTERNAL_ERROR: KVM could not emulate an instruction (`{ kind: 'internal-error' }`). */
export const EXIT_INTERNAL_ERROR = 17;
/** KVM_EXIT_SYSTEM_EVENT: a reset, shutdown or crash request of the guest (`{ kind: 'system-event' }`). */
export const EXIT_SYSTEM_EVENT = 24;

/** `kvm_run.io.direction` of a KVM_EXIT_IO. */
export const EXIT_IO_IN = 0;
/** KVM_EXIT_IO_OUT: the exit is an `out` (the VMM reads `data`). */
export const EXIT_IO_OUT = 1;
