/** `struct kvm_irqfd.flags`. */
export const IRQFD_FLAG_DEASSIGN = 1 << 0;
export const IRQFD_FLAG_RESAMPLE = 1 << 1;

/** `struct kvm_irq_routing_entry.type`. */
export const IRQ_ROUTING_IRQCHIP = 1;
export const IRQ_ROUTING_MSI = 2;

/** `kvm_irq_routing_irqchip.irqchip` on x86. */
export const IRQCHIP_PIC_MASTER = 0;
export const IRQCHIP_PIC_SLAVE = 1;
export const IRQCHIP_IOAPIC = 2;

/** KVM_MAX_IRQ_ROUTES: entries per table, and the GSI bound. */
export const MAX_IRQ_ROUTES = 4096;
/** PIC_NUM_PINS (both 8259s) and KVM_IOAPIC_NUM_PINS. */
export const PIC_NUM_PINS = 16;
export const IOAPIC_NUM_PINS = 24;

/** KVM_MSI_VALID_DEVID: the only flag an MSI entry may carry. */
export const MSI_VALID_DEVID = 1 << 0;

/**
 * IRQ source ids (include/linux/kvm_host.h): a GSI's line is the OR of its
 * sources. KVM_IRQ_LINE and plain (edge) irqfds both use the userspace source,
 * exactly as the kernel does; resampling irqfds have their own.
 */
export const USERSPACE_IRQ_SOURCE_ID = 0;
export const IRQFD_RESAMPLE_IRQ_SOURCE_ID = 1;
