/** `kvm_run.exit_reason` values the interface types (include/uapi/linux/kvm.h). */
export const EXIT_UNKNOWN = 0;
export const EXIT_IO = 2;
export const EXIT_HLT = 5;
export const EXIT_MMIO = 6;
export const EXIT_SHUTDOWN = 8;
export const EXIT_FAIL_ENTRY = 9;
export const EXIT_INTR = 10;
export const EXIT_INTERNAL_ERROR = 17;
export const EXIT_SYSTEM_EVENT = 24;

/** `kvm_run.io.direction` of a KVM_EXIT_IO. */
export const EXIT_IO_IN = 0;
export const EXIT_IO_OUT = 1;
