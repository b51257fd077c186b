/**
 * Flag and type values of the KVM API (include/uapi/linux/kvm.h). The real
 * backend verifies each against the machine's header at build time.
 */

// The ioeventfd, irqfd and GSI-routing values are defined once, by the packages
// that implement those objects (which this one depends on), and re-exported here.

/** `struct kvm_ioeventfd.flags`. */
export {
  IOEVENTFD_FLAG_DATAMATCH,
  IOEVENTFD_FLAG_DEASSIGN,
  IOEVENTFD_FLAG_PIO,
  IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY,
} from '@rxvmm/ioeventfd';
/**
 * `struct kvm_irqfd.flags`, `struct kvm_irq_routing_entry.type`,
 * `kvm_irq_routing_irqchip.irqchip` on x86 and the routing table limit (KVM_MAX_IRQ_ROUTES).
 */
export {
  IRQ_ROUTING_IRQCHIP,
  IRQ_ROUTING_MSI,
  IRQCHIP_IOAPIC,
  IRQCHIP_PIC_MASTER,
  IRQCHIP_PIC_SLAVE,
  IRQFD_FLAG_DEASSIGN,
  IRQFD_FLAG_RESAMPLE,
  MAX_IRQ_ROUTES,
} from '@rxvmm/irqfd';

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
