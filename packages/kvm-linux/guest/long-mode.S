/*
 * Common prologue (see layout.h): the header the VMM reads, and the 64-bit
 * entry that switches to the guest's own GDT, identity page tables (low
 * 4 GiB, 2 MiB pages) and stack, then calls `main` (defined by each guest).
 * `done` (also reached when main returns): one `out` of 0 to DONE_PORT, then
 * halts with interrupts off for good.
 */
#include "layout.h"

	.section .text.start, "ax"
	.code64
header:
	.long GUEST_MAGIC, 0
	.quad entry64
	.quad pml4
	.quad gdt
	.word gdt_end - gdt - 1
	.balign 16

	.globl entry64
entry64:
	cli
	lgdt gdtr
	mov $pml4, %eax
	mov %rax, %cr3
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov %ax, %fs
	mov %ax, %gs
	mov $STACK_TOP, %rsp
	pushq $0x08                     /* reload CS from our GDT */
	pushq $1f
	lretq
1:	call main
	.globl done
done:
	mov $DONE_PORT, %dx
	xor %eax, %eax
	out %al, %dx
2:	cli
	hlt
	jmp 2b

	.section .rodata.gdt, "a"
	.balign 16
gdt:
	.quad 0
	.quad 0x00af9a000000ffff        /* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff        /* 0x10: flat data */
gdt_end:
	.word 0, 0, 0
gdtr:
	.word gdt_end - gdt - 1
	.quad gdt

	.section .data.pagetables, "aw"
	.balign 4096
pml4:
	.quad pdpt + 3
	.fill 511, 8, 0
pdpt:
	.quad pd + 0x0000 + 3
	.quad pd + 0x1000 + 3
	.quad pd + 0x2000 + 3
	.quad pd + 0x3000 + 3
	.fill 508, 8, 0
pd:
	.set i, 0
	.rept 2048
	.quad (i << 21) | 0x83          /* present, writable, 2 MiB page */
	.set i, i + 1
	.endr
