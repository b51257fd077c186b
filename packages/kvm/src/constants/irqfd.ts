/** `struct kvm_irqfd.flags` (include/uapi/linux/kvm.h). */
export const IRQFD_FLAG_DEASSIGN = 1 << 0;
export const IRQFD_FLAG_RESAMPLE = 1 << 1;
