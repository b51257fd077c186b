/**
 * Flag and type values of the KVM API (include/uapi/linux/kvm.h). The real
 * backend verifies each against the machine's header at build time.
 */

/** `struct kvm_ioeventfd.flags`. */
export const IOEVENTFD_FLAG_DATAMATCH = 1 << 0;
export const IOEVENTFD_FLAG_PIO = 1 << 1;
export const IOEVENTFD_FLAG_DEASSIGN = 1 << 2;
export const IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY = 1 << 3;

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

/** Routing table limits (KVM_MAX_IRQ_ROUTES). */
export const MAX_IRQ_ROUTES = 4096;

/** `kvm_run.exit_reason` values the interface types. */
export const EXIT_UNKNOWN = 0;
export const EXIT_IO = 2;
export const EXIT_HLT = 5;
export const EXIT_MMIO = 6;
export const EXIT_SHUTDOWN = 8;
export const EXIT_FAIL_ENTRY = 9;
export const EXIT_INTR = 10;
export const EXIT_INTERNAL_ERROR = 17;
export const EXIT_SYSTEM_EVENT = 24;

/** `KVM_MEM_*` memory region flags. */
export const MEM_LOG_DIRTY_PAGES = 1 << 0;
export const MEM_READONLY = 1 << 1;
