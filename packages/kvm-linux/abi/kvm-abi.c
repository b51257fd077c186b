/*
 * Prints, as JSON, the ioctl numbers, constants, struct sizes and field
 * offsets that src/abi.ts uses, taken from this machine's <linux/kvm.h>.
 * src/abi.test.ts compiles and runs it and compares every value, so the
 * TypeScript encoders can never drift from the kernel's headers.
 */
#include <linux/kvm.h>
#include <stddef.h>
#include <stdio.h>

static int first = 1;
static void put(const char *name, unsigned long long value) {
  printf("%s\n  \"%s\": %llu", first ? "{" : ",", name, value);
  first = 0;
}
#define N(name) put(#name, (unsigned long long)(name))
#define SZ(type) put("sizeof_" #type, sizeof(struct type))
#define OFF(type, field, key) put("offsetof_" #type "_" key, offsetof(struct type, field))

int main(void) {
  /* ioctls */
  N(KVM_GET_API_VERSION); N(KVM_CREATE_VM); N(KVM_CHECK_EXTENSION); N(KVM_GET_VCPU_MMAP_SIZE);
  N(KVM_CREATE_VCPU); N(KVM_SET_USER_MEMORY_REGION); N(KVM_CREATE_IRQCHIP); N(KVM_IRQ_LINE);
  N(KVM_SET_GSI_ROUTING); N(KVM_IRQFD); N(KVM_IOEVENTFD); N(KVM_SIGNAL_MSI); N(KVM_RUN);
  N(KVM_GET_REGS); N(KVM_SET_REGS); N(KVM_GET_SREGS); N(KVM_SET_SREGS);
  N(KVM_GET_LAPIC); N(KVM_SET_LAPIC);
  /* constants */
  N(KVM_API_VERSION);
  N(KVM_CAP_IRQCHIP); N(KVM_CAP_USER_MEMORY); N(KVM_CAP_IRQ_ROUTING); N(KVM_CAP_IRQFD); N(KVM_CAP_IOEVENTFD);
  N(KVM_CAP_SIGNAL_MSI); N(KVM_CAP_IRQFD_RESAMPLE); N(KVM_CAP_IOEVENTFD_ANY_LENGTH); N(KVM_CAP_IMMEDIATE_EXIT);
  N(KVM_EXIT_UNKNOWN); N(KVM_EXIT_IO); N(KVM_EXIT_HLT); N(KVM_EXIT_MMIO); N(KVM_EXIT_SHUTDOWN);
  N(KVM_EXIT_FAIL_ENTRY); N(KVM_EXIT_INTR); N(KVM_EXIT_INTERNAL_ERROR); N(KVM_EXIT_SYSTEM_EVENT);
  N(KVM_EXIT_IO_IN); N(KVM_EXIT_IO_OUT);
  N(KVM_IOEVENTFD_FLAG_DATAMATCH); N(KVM_IOEVENTFD_FLAG_PIO); N(KVM_IOEVENTFD_FLAG_DEASSIGN);
  N(KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY); N(KVM_IOEVENTFD_VALID_FLAG_MASK);
  /* the fast-MMIO bit has no KVM_IOEVENTFD_FLAG_ name, only its enum position */
  put("KVM_IOEVENTFD_FLAG_NR_FAST_MMIO", 1ULL << kvm_ioeventfd_flag_nr_fast_mmio);
  N(KVM_IRQFD_FLAG_DEASSIGN); N(KVM_IRQFD_FLAG_RESAMPLE);
  N(KVM_IRQ_ROUTING_IRQCHIP); N(KVM_IRQ_ROUTING_MSI); N(KVM_MSI_VALID_DEVID);
  N(KVM_IRQCHIP_PIC_MASTER); N(KVM_IRQCHIP_PIC_SLAVE); N(KVM_IRQCHIP_IOAPIC); N(KVM_IOAPIC_NUM_PINS);
  N(KVM_MEM_LOG_DIRTY_PAGES); N(KVM_MEM_READONLY);
  /* struct kvm_userspace_memory_region */
  SZ(kvm_userspace_memory_region);
  OFF(kvm_userspace_memory_region, slot, "slot"); OFF(kvm_userspace_memory_region, flags, "flags");
  OFF(kvm_userspace_memory_region, guest_phys_addr, "guest_phys_addr");
  OFF(kvm_userspace_memory_region, memory_size, "memory_size");
  OFF(kvm_userspace_memory_region, userspace_addr, "userspace_addr");
  /* struct kvm_irq_level */
  SZ(kvm_irq_level); OFF(kvm_irq_level, irq, "irq"); OFF(kvm_irq_level, level, "level");
  /* struct kvm_irqfd */
  SZ(kvm_irqfd); OFF(kvm_irqfd, fd, "fd"); OFF(kvm_irqfd, gsi, "gsi"); OFF(kvm_irqfd, flags, "flags");
  OFF(kvm_irqfd, resamplefd, "resamplefd");
  /* struct kvm_ioeventfd */
  SZ(kvm_ioeventfd); OFF(kvm_ioeventfd, datamatch, "datamatch"); OFF(kvm_ioeventfd, addr, "addr");
  OFF(kvm_ioeventfd, len, "len"); OFF(kvm_ioeventfd, fd, "fd"); OFF(kvm_ioeventfd, flags, "flags");
  /* struct kvm_msi */
  SZ(kvm_msi); OFF(kvm_msi, address_lo, "address_lo"); OFF(kvm_msi, address_hi, "address_hi");
  OFF(kvm_msi, data, "data"); OFF(kvm_msi, flags, "flags"); OFF(kvm_msi, devid, "devid");
  /* struct kvm_irq_routing and its entries */
  SZ(kvm_irq_routing); OFF(kvm_irq_routing, nr, "nr"); OFF(kvm_irq_routing, flags, "flags");
  OFF(kvm_irq_routing, entries, "entries");
  SZ(kvm_irq_routing_entry); OFF(kvm_irq_routing_entry, gsi, "gsi"); OFF(kvm_irq_routing_entry, type, "type");
  OFF(kvm_irq_routing_entry, flags, "flags");
  OFF(kvm_irq_routing_entry, u.irqchip.irqchip, "irqchip"); OFF(kvm_irq_routing_entry, u.irqchip.pin, "pin");
  OFF(kvm_irq_routing_entry, u.msi.address_lo, "msi_address_lo");
  OFF(kvm_irq_routing_entry, u.msi.address_hi, "msi_address_hi");
  OFF(kvm_irq_routing_entry, u.msi.data, "msi_data"); OFF(kvm_irq_routing_entry, u.msi.devid, "msi_devid");
  /* struct kvm_regs */
  SZ(kvm_regs);
  OFF(kvm_regs, rax, "rax"); OFF(kvm_regs, rbx, "rbx"); OFF(kvm_regs, rcx, "rcx"); OFF(kvm_regs, rdx, "rdx");
  OFF(kvm_regs, rsi, "rsi"); OFF(kvm_regs, rdi, "rdi"); OFF(kvm_regs, rsp, "rsp"); OFF(kvm_regs, rbp, "rbp");
  OFF(kvm_regs, r8, "r8"); OFF(kvm_regs, r9, "r9"); OFF(kvm_regs, r10, "r10"); OFF(kvm_regs, r11, "r11");
  OFF(kvm_regs, r12, "r12"); OFF(kvm_regs, r13, "r13"); OFF(kvm_regs, r14, "r14"); OFF(kvm_regs, r15, "r15");
  OFF(kvm_regs, rip, "rip"); OFF(kvm_regs, rflags, "rflags");
  /* struct kvm_segment, kvm_dtable, kvm_sregs */
  SZ(kvm_segment);
  OFF(kvm_segment, base, "base"); OFF(kvm_segment, limit, "limit"); OFF(kvm_segment, selector, "selector");
  OFF(kvm_segment, type, "type"); OFF(kvm_segment, present, "present"); OFF(kvm_segment, dpl, "dpl");
  OFF(kvm_segment, db, "db"); OFF(kvm_segment, s, "s"); OFF(kvm_segment, l, "l"); OFF(kvm_segment, g, "g");
  OFF(kvm_segment, avl, "avl"); OFF(kvm_segment, unusable, "unusable");
  SZ(kvm_dtable); OFF(kvm_dtable, base, "base"); OFF(kvm_dtable, limit, "limit");
  SZ(kvm_sregs);
  OFF(kvm_sregs, cs, "cs"); OFF(kvm_sregs, ds, "ds"); OFF(kvm_sregs, es, "es"); OFF(kvm_sregs, fs, "fs");
  OFF(kvm_sregs, gs, "gs"); OFF(kvm_sregs, ss, "ss"); OFF(kvm_sregs, tr, "tr"); OFF(kvm_sregs, ldt, "ldt");
  OFF(kvm_sregs, gdt, "gdt"); OFF(kvm_sregs, idt, "idt"); OFF(kvm_sregs, cr0, "cr0"); OFF(kvm_sregs, cr2, "cr2");
  OFF(kvm_sregs, cr3, "cr3"); OFF(kvm_sregs, cr4, "cr4"); OFF(kvm_sregs, cr8, "cr8"); OFF(kvm_sregs, efer, "efer");
  OFF(kvm_sregs, apic_base, "apic_base"); OFF(kvm_sregs, interrupt_bitmap, "interrupt_bitmap");
  /* struct kvm_run (the header and the exits rxvmm decodes) */
  OFF(kvm_run, request_interrupt_window, "request_interrupt_window");
  OFF(kvm_run, immediate_exit, "immediate_exit"); OFF(kvm_run, exit_reason, "exit_reason");
  OFF(kvm_run, io.direction, "io_direction"); OFF(kvm_run, io.size, "io_size"); OFF(kvm_run, io.port, "io_port");
  OFF(kvm_run, io.count, "io_count"); OFF(kvm_run, io.data_offset, "io_data_offset");
  OFF(kvm_run, mmio.phys_addr, "mmio_phys_addr"); OFF(kvm_run, mmio.data, "mmio_data");
  OFF(kvm_run, mmio.len, "mmio_len"); OFF(kvm_run, mmio.is_write, "mmio_is_write");
  OFF(kvm_run, fail_entry.hardware_entry_failure_reason, "fail_entry_reason");
  OFF(kvm_run, internal.suberror, "internal_suberror"); OFF(kvm_run, system_event.type, "system_event_type");
  /* struct kvm_lapic_state */
  SZ(kvm_lapic_state); OFF(kvm_lapic_state, regs, "regs");
  /* snapshots (src/abi-snapshot.ts): vCPU state, irqchip, clock */
  N(KVM_GET_MSR_INDEX_LIST); N(KVM_GET_IRQCHIP); N(KVM_SET_IRQCHIP); N(KVM_SET_CLOCK); N(KVM_GET_CLOCK);
  N(KVM_GET_MSRS); N(KVM_SET_MSRS); N(KVM_GET_FPU); N(KVM_SET_FPU); N(KVM_GET_MP_STATE); N(KVM_SET_MP_STATE);
  N(KVM_GET_VCPU_EVENTS); N(KVM_SET_VCPU_EVENTS); N(KVM_GET_XSAVE); N(KVM_SET_XSAVE); N(KVM_GET_XCRS);
  N(KVM_SET_XCRS); N(KVM_GET_XSAVE2);
  N(KVM_CAP_ADJUST_CLOCK); N(KVM_CAP_VCPU_EVENTS); N(KVM_CAP_XSAVE); N(KVM_CAP_XCRS); N(KVM_CAP_XSAVE2);
  N(KVM_MAX_XCRS); N(KVM_MP_STATE_RUNNABLE); N(KVM_MP_STATE_SUSPENDED);
  SZ(kvm_msr_list); OFF(kvm_msr_list, nmsrs, "nmsrs"); OFF(kvm_msr_list, indices, "indices");
  SZ(kvm_msrs); OFF(kvm_msrs, nmsrs, "nmsrs"); OFF(kvm_msrs, entries, "entries");
  SZ(kvm_msr_entry); OFF(kvm_msr_entry, index, "index"); OFF(kvm_msr_entry, data, "data");
  SZ(kvm_fpu); SZ(kvm_xsave);
  SZ(kvm_xcr); OFF(kvm_xcr, xcr, "xcr"); OFF(kvm_xcr, value, "value");
  SZ(kvm_xcrs); OFF(kvm_xcrs, nr_xcrs, "nr_xcrs"); OFF(kvm_xcrs, flags, "flags"); OFF(kvm_xcrs, xcrs, "xcrs");
  SZ(kvm_vcpu_events); OFF(kvm_vcpu_events, flags, "flags");
  SZ(kvm_mp_state); OFF(kvm_mp_state, mp_state, "mp_state");
  SZ(kvm_irqchip); OFF(kvm_irqchip, chip_id, "chip_id"); OFF(kvm_irqchip, chip, "chip");
  SZ(kvm_clock_data); OFF(kvm_clock_data, clock, "clock"); OFF(kvm_clock_data, flags, "flags");
  printf("\n}\n");
  return 0;
}
