/* P_COUNT `out`s of P_VALUE (P_LEN = 1, 2 or 4 bytes) to port P_ADDR, then DONE. */
#include "layout.h"
	.text
	.globl main
main:
	mov PARAMS_BASE + P_ADDR, %rdx
	mov PARAMS_BASE + P_LEN, %rcx
	mov PARAMS_BASE + P_VALUE, %rax
	mov PARAMS_BASE + P_COUNT, %rbx
	test %rbx, %rbx
	jz 9f
	cmp $1, %rcx
	je 1f
	cmp $2, %rcx
	je 2f
4:	out %eax, %dx
	dec %rbx
	jnz 4b
	ret
2:	out %ax, %dx
	dec %rbx
	jnz 2b
	ret
1:	out %al, %dx
	dec %rbx
	jnz 1b
9:	ret
