/* One MMIO read of P_LEN bytes at P_ADDR; reports the value's low 32 bits, then DONE. */
#include "layout.h"
	.text
	.globl main
main:
	mov PARAMS_BASE + P_ADDR, %rdi
	mov PARAMS_BASE + P_LEN, %rcx
	cmp $1, %rcx
	je 1f
	cmp $2, %rcx
	je 2f
	cmp $4, %rcx
	je 4f
	mov (%rdi), %rax
	jmp 9f
4:	mov (%rdi), %eax
	jmp 9f
2:	movzwl (%rdi), %eax
	jmp 9f
1:	movzbl (%rdi), %eax
9:	mov $REPORT_PORT, %dx
	out %eax, %dx
	ret
