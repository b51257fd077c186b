/** `struct kvm_irq_routing_entry.type` (include/uapi/linux/kvm.h). */
export const IRQ_ROUTING_IRQCHIP = 1;
/** KVM_IRQ_ROUTING_MSI: the GSI raises a message-signalled interrupt. */
export const IRQ_ROUTING_MSI = 2;

/** `kvm_irq_routing_irqchip.irqchip` on x86 (arch/x86/include/uapi/asm/kvm.h). */
export const IRQCHIP_PIC_MASTER = 0;
/** The slave 8259 (pins 8..15 of the PIC pair). */
export const IRQCHIP_PIC_SLAVE = 1;
/** The IOAPIC. */
export const IRQCHIP_IOAPIC = 2;

/** KVM_MAX_IRQ_ROUTES: entries per KVM_SET_GSI_ROUTING table, and the GSI bound. */
export const MAX_IRQ_ROUTES = 4096;
/** PIC_NUM_PINS: pins of the two 8259s together, the pins a PIC route may name. */
export const PIC_NUM_PINS = 16;
/** KVM_IOAPIC_NUM_PINS: pins of the in-kernel IOAPIC. */
export const IOAPIC_NUM_PINS = 24;

/** KVM_MSI_VALID_DEVID: the only flag an MSI (routing entry or `struct kvm_msi`) may carry. */
export const MSI_VALID_DEVID = 1 << 0;
