/**
 * The /dev/kvm ABI used by this package: ioctl numbers, capabilities, struct
 * sizes and field offsets of include/uapi/linux/kvm.h (x86-64). The flag, type
 * and exit values of the KVM API are `@rxvmm/kvm`'s (every backend shares them).
 *
 * Written out here so the encoders are plain TypeScript, and checked: the test
 * abi.test.ts compiles abi/kvm-abi.c against this machine's <linux/kvm.h> and
 * compares every value of `abiTable()` with what the C compiler says, the
 * `@rxvmm/kvm` ones included.
 */
import {
  EXIT_FAIL_ENTRY,
  EXIT_HLT,
  EXIT_INTERNAL_ERROR,
  EXIT_INTR,
  EXIT_IO,
  EXIT_IO_IN,
  EXIT_IO_OUT,
  EXIT_MMIO,
  EXIT_SHUTDOWN,
  EXIT_SYSTEM_EVENT,
  EXIT_UNKNOWN,
  IOAPIC_NUM_PINS,
  IOEVENTFD_FLAG_DATAMATCH,
  IOEVENTFD_FLAG_DEASSIGN,
  IOEVENTFD_FLAG_NR_FAST_MMIO_BIT,
  IOEVENTFD_FLAG_PIO,
  IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY,
  IOEVENTFD_VALID_FLAG_MASK,
  IRQ_ROUTING_IRQCHIP,
  IRQ_ROUTING_MSI,
  IRQCHIP_IOAPIC,
  IRQCHIP_PIC_MASTER,
  IRQCHIP_PIC_SLAVE,
  IRQFD_FLAG_DEASSIGN,
  IRQFD_FLAG_RESAMPLE,
  MEM_LOG_DIRTY_PAGES,
  MEM_READONLY,
  MSI_VALID_DEVID,
  REG_NAMES,
} from '@rxvmm/kvm';

import { snapshotAbiTable } from './abi-snapshot.js';

const KVMIO = 0xae;
const IOC_NONE = 0;
const IOC_WRITE = 1;
const IOC_READ = 2;
/** The kernel's _IOC(dir, type, nr, size) (asm-generic/ioctl.h). */
const ioc = (dir: number, nr: number, size: number): number =>
  (dir * 2 ** 30 + (size << 16) + (KVMIO << 8) + nr) >>> 0;
const io = (nr: number) => ioc(IOC_NONE, nr, 0);
const iow = (nr: number, size: number) => ioc(IOC_WRITE, nr, size);
const ior = (nr: number, size: number) => ioc(IOC_READ, nr, size);

/** struct kvm_userspace_memory_region */
export const MemoryRegionLayout = {
  size: 32,
  slot: 0,
  flags: 4,
  guest_phys_addr: 8,
  memory_size: 16,
  userspace_addr: 24,
} as const;

/** struct kvm_irq_level */
export const IrqLevelLayout = { size: 8, irq: 0, level: 4 } as const;

/** struct kvm_irqfd */
export const IrqfdLayout = { size: 32, fd: 0, gsi: 4, flags: 8, resamplefd: 12 } as const;

/** struct kvm_ioeventfd */
export const IoeventfdLayout = { size: 64, datamatch: 0, addr: 8, len: 16, fd: 20, flags: 24 } as const;

/** struct kvm_msi */
export const MsiLayout = { size: 32, address_lo: 0, address_hi: 4, data: 8, flags: 12, devid: 16 } as const;

/** struct kvm_irq_routing (header; entries follow) */
export const IrqRoutingLayout = { size: 8, nr: 0, flags: 4, entries: 8 } as const;

/** struct kvm_irq_routing_entry */
export const IrqRoutingEntryLayout = {
  size: 48,
  gsi: 0,
  type: 4,
  flags: 8,
  irqchip: 16,
  pin: 20,
  msi_address_lo: 16,
  msi_address_hi: 20,
  msi_data: 24,
  msi_devid: 28,
} as const;

/** struct kvm_regs: 18 consecutive u64s in this order (`REG_NAMES` of @rxvmm/kvm). */
export const REGS_ORDER = REG_NAMES;
export const RegsLayout = { size: 144 } as const;

/** struct kvm_segment */
export const SegmentLayout = {
  size: 24,
  base: 0,
  limit: 8,
  selector: 12,
  type: 14,
  present: 15,
  dpl: 16,
  db: 17,
  s: 18,
  l: 19,
  g: 20,
  avl: 21,
  unusable: 22,
} as const;

/** struct kvm_dtable */
export const DtableLayout = { size: 16, base: 0, limit: 8 } as const;

/** struct kvm_sregs */
export const SregsLayout = {
  size: 312,
  cs: 0,
  ds: 24,
  es: 48,
  fs: 72,
  gs: 96,
  ss: 120,
  tr: 144,
  ldt: 168,
  gdt: 192,
  idt: 208,
  cr0: 224,
  cr2: 232,
  cr3: 240,
  cr4: 248,
  cr8: 256,
  efer: 264,
  apic_base: 272,
  interrupt_bitmap: 280,
} as const;

/** struct kvm_run: the header and the exit payloads decoded by `Vcpu.run()`. */
export const RunLayout = {
  request_interrupt_window: 0,
  immediate_exit: 1,
  exit_reason: 8,
  io_direction: 32,
  io_size: 33,
  io_port: 34,
  io_count: 36,
  io_data_offset: 40,
  mmio_phys_addr: 32,
  mmio_data: 40,
  mmio_len: 48,
  mmio_is_write: 52,
  fail_entry_reason: 32,
  internal_suberror: 32,
  system_event_type: 32,
} as const;

/** ioctl request numbers. */
export const KVM_GET_API_VERSION = io(0x00);
export const KVM_CREATE_VM = io(0x01);
export const KVM_CHECK_EXTENSION = io(0x03);
export const KVM_GET_VCPU_MMAP_SIZE = io(0x04);
export const KVM_CREATE_VCPU = io(0x41);
export const KVM_SET_USER_MEMORY_REGION = iow(0x46, MemoryRegionLayout.size);
export const KVM_CREATE_IRQCHIP = io(0x60);
export const KVM_IRQ_LINE = iow(0x61, IrqLevelLayout.size);
export const KVM_SET_GSI_ROUTING = iow(0x6a, IrqRoutingLayout.size);
export const KVM_IRQFD = iow(0x76, IrqfdLayout.size);
export const KVM_IOEVENTFD = iow(0x79, IoeventfdLayout.size);
export const KVM_SIGNAL_MSI = iow(0xa5, MsiLayout.size);
export const KVM_RUN = io(0x80);
export const KVM_GET_REGS = ior(0x81, RegsLayout.size);
export const KVM_SET_REGS = iow(0x82, RegsLayout.size);
export const KVM_GET_SREGS = ior(0x83, SregsLayout.size);
export const KVM_SET_SREGS = iow(0x84, SregsLayout.size);
/** struct kvm_lapic_state: the local APIC's 1 KiB register page (x86 KVM_APIC_REG_SIZE). */
export const LapicStateLayout = { size: 0x400, regs: 0 } as const;
export const KVM_GET_LAPIC = ior(0x8e, LapicStateLayout.size);
export const KVM_SET_LAPIC = iow(0x8f, LapicStateLayout.size);

export const KVM_API_VERSION = 12;

/** KVM_CAP_* numbers for KVM_CHECK_EXTENSION. */
export const KVM_CAP_IRQCHIP = 0;
export const KVM_CAP_USER_MEMORY = 3;
export const KVM_CAP_IRQ_ROUTING = 25;
export const KVM_CAP_IRQFD = 32;
export const KVM_CAP_IOEVENTFD = 36;
export const KVM_CAP_SIGNAL_MSI = 77;
export const KVM_CAP_IRQFD_RESAMPLE = 82;
export const KVM_CAP_IOEVENTFD_ANY_LENGTH = 122;
export const KVM_CAP_IMMEDIATE_EXIT = 136;

/** Every value above under the key abi/kvm-abi.c prints it with. */
export function abiTable(): Record<string, number> {
  const table: Record<string, number> = {
    KVM_GET_API_VERSION,
    KVM_CREATE_VM,
    KVM_CHECK_EXTENSION,
    KVM_GET_VCPU_MMAP_SIZE,
    KVM_CREATE_VCPU,
    KVM_SET_USER_MEMORY_REGION,
    KVM_CREATE_IRQCHIP,
    KVM_IRQ_LINE,
    KVM_SET_GSI_ROUTING,
    KVM_IRQFD,
    KVM_IOEVENTFD,
    KVM_SIGNAL_MSI,
    KVM_RUN,
    KVM_GET_REGS,
    KVM_SET_REGS,
    KVM_GET_SREGS,
    KVM_SET_SREGS,
    KVM_GET_LAPIC,
    KVM_SET_LAPIC,
    KVM_API_VERSION,
    KVM_CAP_IRQCHIP,
    KVM_CAP_USER_MEMORY,
    KVM_CAP_IRQ_ROUTING,
    KVM_CAP_IRQFD,
    KVM_CAP_IOEVENTFD,
    KVM_CAP_SIGNAL_MSI,
    KVM_CAP_IRQFD_RESAMPLE,
    KVM_CAP_IOEVENTFD_ANY_LENGTH,
    KVM_CAP_IMMEDIATE_EXIT,
    // @rxvmm/kvm's values, under their header names.
    KVM_EXIT_UNKNOWN: EXIT_UNKNOWN,
    KVM_EXIT_IO: EXIT_IO,
    KVM_EXIT_HLT: EXIT_HLT,
    KVM_EXIT_MMIO: EXIT_MMIO,
    KVM_EXIT_SHUTDOWN: EXIT_SHUTDOWN,
    KVM_EXIT_FAIL_ENTRY: EXIT_FAIL_ENTRY,
    KVM_EXIT_INTR: EXIT_INTR,
    KVM_EXIT_INTERNAL_ERROR: EXIT_INTERNAL_ERROR,
    KVM_EXIT_SYSTEM_EVENT: EXIT_SYSTEM_EVENT,
    KVM_EXIT_IO_IN: EXIT_IO_IN,
    KVM_EXIT_IO_OUT: EXIT_IO_OUT,
    KVM_IOEVENTFD_FLAG_DATAMATCH: IOEVENTFD_FLAG_DATAMATCH,
    KVM_IOEVENTFD_FLAG_PIO: IOEVENTFD_FLAG_PIO,
    KVM_IOEVENTFD_FLAG_DEASSIGN: IOEVENTFD_FLAG_DEASSIGN,
    KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY: IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY,
    KVM_IOEVENTFD_FLAG_NR_FAST_MMIO: IOEVENTFD_FLAG_NR_FAST_MMIO_BIT,
    KVM_IOEVENTFD_VALID_FLAG_MASK: IOEVENTFD_VALID_FLAG_MASK,
    KVM_IRQFD_FLAG_DEASSIGN: IRQFD_FLAG_DEASSIGN,
    KVM_IRQFD_FLAG_RESAMPLE: IRQFD_FLAG_RESAMPLE,
    KVM_IRQ_ROUTING_IRQCHIP: IRQ_ROUTING_IRQCHIP,
    KVM_IRQ_ROUTING_MSI: IRQ_ROUTING_MSI,
    KVM_IRQCHIP_PIC_MASTER: IRQCHIP_PIC_MASTER,
    KVM_IRQCHIP_PIC_SLAVE: IRQCHIP_PIC_SLAVE,
    KVM_IRQCHIP_IOAPIC: IRQCHIP_IOAPIC,
    KVM_IOAPIC_NUM_PINS: IOAPIC_NUM_PINS,
    KVM_MSI_VALID_DEVID: MSI_VALID_DEVID,
    KVM_MEM_LOG_DIRTY_PAGES: MEM_LOG_DIRTY_PAGES,
    KVM_MEM_READONLY: MEM_READONLY,
  };
  const structs: Record<string, Record<string, number>> = {
    kvm_userspace_memory_region: MemoryRegionLayout,
    kvm_irq_level: IrqLevelLayout,
    kvm_irqfd: IrqfdLayout,
    kvm_ioeventfd: IoeventfdLayout,
    kvm_msi: MsiLayout,
    kvm_irq_routing: IrqRoutingLayout,
    kvm_irq_routing_entry: IrqRoutingEntryLayout,
    kvm_regs: { size: RegsLayout.size, ...Object.fromEntries(REGS_ORDER.map((name, i) => [name, i * 8])) },
    kvm_segment: SegmentLayout,
    kvm_dtable: DtableLayout,
    kvm_sregs: SregsLayout,
    kvm_run: RunLayout,
    kvm_lapic_state: LapicStateLayout,
  };
  for (const [struct, layout] of Object.entries(structs)) {
    for (const [field, value] of Object.entries(layout)) {
      table[field === 'size' ? `sizeof_${struct}` : `offsetof_${struct}_${field}`] = value;
    }
  }
  return Object.assign(table, snapshotAbiTable());
}
