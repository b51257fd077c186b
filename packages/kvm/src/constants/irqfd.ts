/** `struct kvm_irqfd.flags` (include/uapi/linux/kvm.h). */
export const IRQFD_FLAG_DEASSIGN = 1 << 0;
/** KVM_IRQFD_FLAG_RESAMPLE: a level-triggered irqfd that the guest's EOI de-asserts, signalling `resamplefd`. */
export const IRQFD_FLAG_RESAMPLE = 1 << 1;
