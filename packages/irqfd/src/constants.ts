/**
 * IRQ source ids (include/linux/kvm_host.h; kernel-internal, not UAPI): a GSI's
 * line is the OR of its sources. KVM_IRQ_LINE and plain (edge) irqfds both use
 * the userspace source, exactly as the kernel does; resampling irqfds have their own.
 * The KVM API values (flags, routing types, irqchips, limits) are `@rxvmm/kvm`'s.
 */
export const USERSPACE_IRQ_SOURCE_ID = 0;
/** KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID: the source resampling irqfds assert a level GSI with. */
export const IRQFD_RESAMPLE_IRQ_SOURCE_ID = 1;
