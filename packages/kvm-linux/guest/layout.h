/*
 * Guest-physical layout shared by every rxvmm test guest (and mirrored in
 * test/guests.ts, checked there against build/guests/layout.json).
 *
 * Each guest is a flat binary loaded at CODE_BASE, starting with a header
 * (HDR_*) that names its 64-bit entry point and its own identity page tables
 * and GDT. The VMM enters it in 64-bit long mode with any identity mapping of
 * the binary (or with CR3 = HDR_PML4 and GDTR = HDR_GDT*); the guest then
 * loads its own GDT, segments, page tables (the low 4 GiB, 2 MiB pages, so RAM,
 * the MMIO window, the IOAPIC and the LAPIC are reachable) and stack.
 * (Entering long mode from real mode inside the guest would need the VMM to
 * set CPUID first: without KVM_SET_CPUID2 a guest's EFER.LME write faults.)
 * The same binaries run under the TypeScript VMM and the C reference programs.
 */
#define PARAMS_BASE   0x0500   /* parameter block written by the VMM */
#define IDT_BASE      0x1000   /* 256 x 16-byte gates, built by the guest */
#define CODE_BASE     0x8000   /* flat binary (code, GDT, page tables, data) */
#define STACK_TOP     0x80000

/* Header at CODE_BASE: little-endian fields. */
#define HDR_MAGIC     0x00     /* u32 GUEST_MAGIC */
#define HDR_ENTRY64   0x08     /* u64 64-bit entry point */
#define HDR_PML4      0x10     /* u64 the guest's PML4 */
#define HDR_GDT_BASE  0x18     /* u64 the guest's GDT (0x08 = 64-bit code, 0x10 = data) */
#define HDR_GDT_LIMIT 0x20     /* u16 */
#define GUEST_MAGIC   0x47565852 /* "RXVG" */

/* Parameter block: little-endian u64 fields at these offsets. */
#define P_ADDR        0x00     /* MMIO GPA or PIO port */
#define P_LEN         0x08     /* access size: 1, 2, 4, 8 */
#define P_VALUE       0x10     /* value written */
#define P_COUNT       0x18     /* writes to make / interrupts to take / values in P_VALUES */
#define P_IOAPIC_PIN  0x20     /* IOAPIC pin to program, or ~0 for none (MSI) */
#define P_VECTOR      0x28     /* vector for that pin */
#define P_LEVEL       0x30     /* 1: level-triggered redirection entry */
#define P_READY       0x38     /* 1: report READY_REPORT once set up, before the first sleep */
#define P_VALUES      0x40     /* sequence writer: P_COUNT u64 values */
#define P_VALUES_MAX  24

#define REPORT_PORT   0x3f0
#define DONE_PORT     0x3f4
#define READY_REPORT  0x52454459 /* "REDY" (@rxvmm/kvm/contract) */

#define LAPIC_BASE    0xfee00000
#define IOAPIC_BASE   0xfec00000
/* Reported (as value | vector) when a CPU exception (vector < 32) is taken. */
#define FAULT_TAG     0xfa000000
