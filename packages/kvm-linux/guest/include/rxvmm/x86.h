/*
 * rxvmm/x86.h: interrupt set-up for x86-64 guests that @rxvmm/kvm-linux
 * starts in long mode (setupLongMode). For C (freestanding, no libc) and for
 * GNU as through the C preprocessor (gcc -c file.S): `#include <rxvmm/x86.h>`
 * with `-I node_modules/@rxvmm/kvm-linux/guest/include`.
 *
 * Two ways to get interrupts into a guest:
 *   - the VMM does it before the guest runs: setupIdt() writes the gates and
 *     loads IDTR, enableLocalApic() software-enables the LAPIC (KVM_SET_LAPIC);
 *     the guest only sends the EOI (rxvmm_lapic_eoi: a C function and an as macro);
 *   - the guest does it itself with what is below (a guest that must also run
 *     under another VMM, or that builds its IDT from its own symbols).
 * The numbers are the TypeScript exports' (LAPIC_BASE, LapicRegister, ...),
 * which src/x86/guest-header.test.ts checks against this file.
 */
#ifndef RXVMM_X86_H
#define RXVMM_X86_H

/* Guest-physical memory map of the helpers (README: "Guest-physical memory map"). */
#define RXVMM_BOOT_GDT_ADDR     0x700
#define RXVMM_BOOT_IDT_ADDR     0x1000     /* setupIdt's default: 256 x 16-byte gates */
#define RXVMM_BOOT_PML4_ADDR    0x2000
#define RXVMM_FREE_MEMORY_START 0x8000     /* for the default 4 GiB identity map */
#define RXVMM_CODE64_SELECTOR   0x08       /* setupLongMode's 64-bit code segment */

/* Local APIC (its registers are MMIO at LAPIC_BASE) and IOAPIC. */
#define RXVMM_LAPIC_BASE        0xfee00000
#define RXVMM_LAPIC_REG_TPR     0x080
#define RXVMM_LAPIC_REG_EOI     0x0b0
#define RXVMM_LAPIC_REG_SVR     0x0f0
#define RXVMM_LAPIC_REG_LVT_LINT0 0x350
#define RXVMM_LAPIC_REG_LVT_LINT1 0x360
#define RXVMM_APIC_SVR_ENABLE   0x100
#define RXVMM_APIC_LVT_MASKED   0x10000
#define RXVMM_IOAPIC_BASE       0xfec00000
#define RXVMM_IDT_GATE_BYTES    16
#define RXVMM_IDT_INTERRUPT_GATE 0x8e      /* present, DPL 0, 64-bit interrupt gate */

#ifdef __ASSEMBLER__
/*
 * GNU as macros (AT&T syntax). Addresses above 2 GiB go through a register:
 * a 32-bit displacement would be sign-extended.
 */

/* EOI to the local APIC; every register kept. */
.macro rxvmm_lapic_eoi
	push %rax
	mov $RXVMM_LAPIC_BASE, %eax
	movl $0, RXVMM_LAPIC_REG_EOI(%rax)
	pop %rax
.endm

/*
 * Software-enables the local APIC with spurious vector \spurious, TPR 0,
 * LINT0 and LINT1 masked (the legacy PIC reaches LINT0 as ExtINT). Clobbers %rax.
 */
.macro rxvmm_lapic_enable spurious=0xff
	mov $RXVMM_LAPIC_BASE, %eax
	movl $(RXVMM_APIC_SVR_ENABLE | \spurious), RXVMM_LAPIC_REG_SVR(%rax)
	movl $0, RXVMM_LAPIC_REG_TPR(%rax)
	movl $RXVMM_APIC_LVT_MASKED, RXVMM_LAPIC_REG_LVT_LINT0(%rax)
	movl $RXVMM_APIC_LVT_MASKED, RXVMM_LAPIC_REG_LVT_LINT1(%rax)
.endm

/*
 * Fills \count interrupt gates from vector 0 at \idt, gate i pointing at
 * \stubs + i * \stride (a table of equally sized entry stubs), then loads
 * IDTR with the full 256-gate table. Clobbers %rax, %rcx, %rsi, %rdi.
 */
.macro rxvmm_idt_fill idt, stubs, stride, count=256
	mov $\idt, %rdi
	mov $\stubs, %rsi
	mov $\count, %ecx
.Lrxvmm_idt_fill\@:
	mov %rsi, %rax
	mov %ax, (%rdi)                         /* offset 15:0 */
	movw $RXVMM_CODE64_SELECTOR, 2(%rdi)
	movw $(RXVMM_IDT_INTERRUPT_GATE << 8), 4(%rdi)
	shr $16, %rax
	mov %ax, 6(%rdi)                        /* offset 31:16 */
	shr $16, %rax
	mov %eax, 8(%rdi)                       /* offset 63:32 */
	movl $0, 12(%rdi)
	add $RXVMM_IDT_GATE_BYTES, %rdi
	add $\stride, %rsi
	dec %ecx
	jnz .Lrxvmm_idt_fill\@
	sub $16, %rsp                           /* IDTR: limit (2 bytes) then base (8) */
	movw $(256 * RXVMM_IDT_GATE_BYTES - 1), 6(%rsp)
	movq $\idt, 8(%rsp)
	lidt 6(%rsp)
	add $16, %rsp
.endm

#else /* C */

#include <stdint.h>

/* One 64-bit IDT gate. */
struct rxvmm_idt_gate {
  uint16_t offset_lo;
  uint16_t selector;
  uint8_t ist;
  uint8_t type_attr;
  uint16_t offset_mid;
  uint32_t offset_hi;
  uint32_t reserved;
} __attribute__((packed));

static inline void rxvmm_mmio_write32(uint64_t addr, uint32_t value) {
  *(volatile uint32_t *)addr = value;
}

/* Points gate `vector` of `idt` at `handler` (an interrupt gate, IF cleared on entry). */
static inline void rxvmm_idt_set_gate(struct rxvmm_idt_gate *idt, unsigned vector, void (*handler)(void)) {
  uint64_t offset = (uint64_t)handler;
  uint16_t cs;
  __asm__ volatile("mov %%cs, %0" : "=r"(cs));
  idt[vector].offset_lo = (uint16_t)offset;
  idt[vector].selector = cs;
  idt[vector].ist = 0;
  idt[vector].type_attr = RXVMM_IDT_INTERRUPT_GATE;
  idt[vector].offset_mid = (uint16_t)(offset >> 16);
  idt[vector].offset_hi = (uint32_t)(offset >> 32);
  idt[vector].reserved = 0;
}

/* Loads IDTR with a table of `gates` gates. */
static inline void rxvmm_lidt(const struct rxvmm_idt_gate *idt, unsigned gates) {
  struct {
    uint16_t limit;
    uint64_t base;
  } __attribute__((packed)) idtr = {(uint16_t)(gates * RXVMM_IDT_GATE_BYTES - 1), (uint64_t)idt};
  __asm__ volatile("lidt %0" ::"m"(idtr));
}

/* Software-enables the local APIC: spurious vector, TPR 0, LINT0/LINT1 masked. */
static inline void rxvmm_lapic_enable(uint8_t spurious_vector) {
  rxvmm_mmio_write32(RXVMM_LAPIC_BASE + RXVMM_LAPIC_REG_TPR, 0);
  rxvmm_mmio_write32(RXVMM_LAPIC_BASE + RXVMM_LAPIC_REG_LVT_LINT0, RXVMM_APIC_LVT_MASKED);
  rxvmm_mmio_write32(RXVMM_LAPIC_BASE + RXVMM_LAPIC_REG_LVT_LINT1, RXVMM_APIC_LVT_MASKED);
  rxvmm_mmio_write32(RXVMM_LAPIC_BASE + RXVMM_LAPIC_REG_SVR, RXVMM_APIC_SVR_ENABLE | spurious_vector);
}

/* End Of Interrupt to the local APIC (not for the spurious vector). */
static inline void rxvmm_lapic_eoi(void) {
  rxvmm_mmio_write32(RXVMM_LAPIC_BASE + RXVMM_LAPIC_REG_EOI, 0);
}

/* Routes IOAPIC pin `pin` to `vector` on APIC 0: fixed, physical, active high, edge or level. */
static inline void rxvmm_ioapic_route(unsigned pin, uint8_t vector, int level) {
  uint32_t index = 0x10 + 2 * pin;
  rxvmm_mmio_write32(RXVMM_IOAPIC_BASE, index + 1); /* high dword: destination APIC ID 0 */
  rxvmm_mmio_write32(RXVMM_IOAPIC_BASE + 0x10, 0);
  rxvmm_mmio_write32(RXVMM_IOAPIC_BASE, index);
  rxvmm_mmio_write32(RXVMM_IOAPIC_BASE + 0x10, vector | (level ? 0x8000u : 0));
}

#endif /* __ASSEMBLER__ */
#endif /* RXVMM_X86_H */
