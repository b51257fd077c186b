/* One `in` of P_LEN (1, 2 or 4) bytes from port P_ADDR; reports the value, then DONE. */
#include "layout.h"
	.text
	.globl main
main:
	mov PARAMS_BASE + P_ADDR, %rdx
	mov PARAMS_BASE + P_LEN, %rcx
	xor %eax, %eax
	cmp $1, %rcx
	je 1f
	cmp $2, %rcx
	je 2f
	in %dx, %eax
	jmp 9f
2:	in %dx, %ax
	jmp 9f
1:	in %dx, %al
9:	mov $REPORT_PORT, %dx
	out %eax, %dx
	ret
