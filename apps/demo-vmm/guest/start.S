/* Entry in 64-bit long mode with %rdi = struct boot_info *. */
#include "abi.h"

  .section .text.start, "ax"
  .global _start
_start:
  /* First instruction: tell the VMM the guest is running (start-up time). */
  mov $HELLO_PORT, %dx
  out %al, %dx
  cli
  mov %rdi, %r12
  /* Zero .bss eight bytes at a time (the linker script aligns it to 8): guest instructions are slow
     on a nested KVM, and rep stosb costs per byte. */
  lea __bss_start(%rip), %rdi
  lea __bss_end(%rip), %rcx
  sub %rdi, %rcx
  shr $3, %rcx
  xor %eax, %eax
  cld
  rep stosq
  lea stack_top(%rip), %rsp
  mov %r12, %rdi
  call guest_main
  mov $DONE_PORT, %dx
  xor %eax, %eax
  out %al, %dx
1:
  cli
  hlt
  jmp 1b

/* Device interrupt: save the caller-saved registers, run the C handler. */
  .text
  .global irq_entry
irq_entry:
  push %rax
  push %rcx
  push %rdx
  push %rsi
  push %rdi
  push %r8
  push %r9
  push %r10
  push %r11
  cld
  call irq_handler
  pop %r11
  pop %r10
  pop %r9
  pop %r8
  pop %rdi
  pop %rsi
  pop %rdx
  pop %rcx
  pop %rax
  iretq

/* LAPIC spurious vector: no EOI. */
  .global spurious_entry
spurious_entry:
  iretq

  /* The stack is not in .bss: nothing needs it zeroed. */
  .section .stack, "aw", @nobits
  .balign 16
stack_bottom:
  .skip 16384
stack_top:

  .section .note.GNU-stack, "", @progbits
