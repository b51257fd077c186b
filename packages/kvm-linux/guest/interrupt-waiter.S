/*
 * Interrupt waiter: builds a 64-bit IDT (one stub per vector), enables the
 * LAPIC (software enable in SVR, LINT0 masked so the legacy PIC cannot inject
 * through ExtINT), optionally programs IOAPIC pin P_IOAPIC_PIN to deliver
 * P_VECTOR (edge, or level when P_LEVEL) to APIC 0, then sleeps with
 * `sti; hlt`. Each interrupt's handler reports its vector on REPORT_PORT and
 * sends EOI to the LAPIC (which, for a level-triggered vector, EOIs the IOAPIC
 * and so triggers irqfd resampling). After P_COUNT interrupts: DONE.
 * With P_READY, it reports READY_REPORT after its set-up, just before the
 * first sleep, so a VMM can signal without blocking in a sleeping KVM_RUN.
 * With P_ADDR != 0 (doorbell mode), before waiting for each interrupt it
 * writes P_VALUE (4 bytes) to P_ADDR once: a request to a device that answers
 * with the interrupt.
 * A CPU exception reports FAULT_TAG | vector, then DONE.
 */
#include "layout.h"
#include <rxvmm/x86.h>

	.text
	.globl main
main:
	/* IDT: gate i -> stubs + 16 * i; LAPIC: spurious vector 0xff, software
	 * enabled, all priorities, LINT0/LINT1 masked (rxvmm/x86.h). */
	rxvmm_idt_fill IDT_BASE, stubs, 16
	rxvmm_lapic_enable 0xff
	mov $IOAPIC_BASE, %r9d

	/* IOAPIC redirection entry (registers 0x10 + 2 * pin, low then high). */
	mov PARAMS_BASE + P_IOAPIC_PIN, %rcx
	cmp $23, %rcx
	ja 2f
	lea 0x10(,%rcx,2), %ecx
	lea 1(%rcx), %edx
	movl %edx, (%r9)                /* IOREGSEL: high dword */
	movl $0, 0x10(%r9)              /* IOWIN: destination APIC ID 0 */
	mov PARAMS_BASE + P_VECTOR, %eax
	and $0xff, %eax                 /* fixed delivery, physical, active high, unmasked */
	cmpq $0, PARAMS_BASE + P_LEVEL
	je 3f
	or $0x8000, %eax                /* level-triggered */
3:	movl %ecx, (%r9)                /* IOREGSEL: low dword */
	movl %eax, 0x10(%r9)            /* IOWIN */

2:	cmpq $0, PARAMS_BASE + P_READY
	je 6f
	mov $READY_REPORT, %eax
	mov $REPORT_PORT, %dx
	out %eax, %dx
6:	mov PARAMS_BASE + P_COUNT, %rbx
	mov PARAMS_BASE + P_ADDR, %rdi
4:	cli
	cmp %rbx, taken
	jae 5f
	/* Doorbell mode (P_ADDR != 0): ring once per interrupt awaited, i.e. ask a
	 * device for work and sleep until it interrupts. */
	test %rdi, %rdi
	jz 7f
	mov taken, %rax
	cmp %rax, rung
	ja 7f
	mov PARAMS_BASE + P_VALUE, %eax
	mov %eax, (%rdi)
	incq rung
7:	sti                             /* the interrupt shadow covers hlt: no lost wake-up */
	hlt
	jmp 4b
5:	ret

isr_common:
	push %rax
	push %rdx
	mov 16(%rsp), %rax              /* vector pushed by the stub */
	cmp $32, %eax
	jb fault
	mov $REPORT_PORT, %dx
	out %eax, %dx
	rxvmm_lapic_eoi
	incq taken
	pop %rdx
	pop %rax
	add $8, %rsp
	iretq

fault:
	or $FAULT_TAG, %eax
	mov $REPORT_PORT, %dx
	out %eax, %dx
	jmp done

	.balign 16
stubs:
	.set v, 0
	.rept 256
	.balign 16
	pushq $v
	jmp isr_common
	.set v, v + 1
	.endr

	.data
	.balign 8
taken:
	.quad 0
rung:
	.quad 0
