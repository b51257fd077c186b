/* P_COUNT MMIO writes of P_VALUE (P_LEN bytes) to P_ADDR, then DONE.
 * Also the doorbell loop of the benchmarks (one write = one doorbell). */
#include "layout.h"
	.text
	.globl main
main:
	mov PARAMS_BASE + P_ADDR, %rdi
	mov PARAMS_BASE + P_LEN, %rcx
	mov PARAMS_BASE + P_VALUE, %rax
	mov PARAMS_BASE + P_COUNT, %rbx
	test %rbx, %rbx
	jz 9f
	cmp $1, %rcx
	je 1f
	cmp $2, %rcx
	je 2f
	cmp $4, %rcx
	je 4f
8:	mov %rax, (%rdi)
	dec %rbx
	jnz 8b
	ret
4:	mov %eax, (%rdi)
	dec %rbx
	jnz 4b
	ret
2:	mov %ax, (%rdi)
	dec %rbx
	jnz 2b
	ret
1:	mov %al, (%rdi)
	dec %rbx
	jnz 1b
9:	ret
