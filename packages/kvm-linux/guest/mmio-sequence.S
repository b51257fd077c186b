/* Datamatch doorbell guest: one MMIO write (P_LEN bytes) to P_ADDR of each of
 * the P_COUNT values at P_VALUES, in order, then DONE. */
#include "layout.h"
	.text
	.globl main
main:
	mov PARAMS_BASE + P_ADDR, %rdi
	mov PARAMS_BASE + P_LEN, %rcx
	mov PARAMS_BASE + P_COUNT, %rbx
	mov $PARAMS_BASE + P_VALUES, %rsi
	test %rbx, %rbx
	jz 9f
0:	mov (%rsi), %rax
	cmp $1, %rcx
	je 1f
	cmp $2, %rcx
	je 2f
	cmp $4, %rcx
	je 4f
	mov %rax, (%rdi)
	jmp 5f
4:	mov %eax, (%rdi)
	jmp 5f
2:	mov %ax, (%rdi)
	jmp 5f
1:	mov %al, (%rdi)
5:	add $8, %rsi
	dec %rbx
	jnz 0b
9:	ret
