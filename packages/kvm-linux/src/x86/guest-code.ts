/**
 * x86-64 machine code a VMM can place in guest RAM next to its own guest
 * bytes: the pieces of an interrupt handler that every guest needs and that
 * are easy to get wrong by hand (the EOI through a register, since the LAPIC
 * is above 2 GiB where a 32-bit displacement would sign-extend; `iretq` with
 * its REX.W prefix). For guests built from C or assembly, the same pieces are
 * in guest/include/rxvmm/x86.h.
 */
import { LAPIC_EOI_ADDR } from './local-apic.js';

const eoi = Number(LAPIC_EOI_ADDR);

/** `push rax; mov eax, 0xfee000b0; mov dword [rax], 0; pop rax`: EOI to the local APIC, registers kept. */
export const GUEST_LAPIC_EOI = Uint8Array.of(
  0x50,
  0xb8,
  eoi & 0xff,
  (eoi >>> 8) & 0xff,
  (eoi >>> 16) & 0xff,
  eoi >>> 24,
  0xc7,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
  0x58,
);

/** `iretq`: return from an interrupt handler in 64-bit mode. */
export const GUEST_IRETQ = Uint8Array.of(0x48, 0xcf);

/** `sti; hlt`: enable interrupts and sleep; the STI shadow covers HLT, so no wake-up is lost. */
export const GUEST_STI_HLT = Uint8Array.of(0xfb, 0xf4);

/**
 * An interrupt handler: `body` (which must keep every register it uses, and the stack balanced),
 * then the EOI, then `iretq`. For the spurious vector use `GUEST_IRETQ` alone (no EOI).
 */
export function interruptHandlerCode(body: Uint8Array = new Uint8Array()): Uint8Array {
  const code = new Uint8Array(body.length + GUEST_LAPIC_EOI.length + GUEST_IRETQ.length);
  code.set(body, 0);
  code.set(GUEST_LAPIC_EOI, body.length);
  code.set(GUEST_IRETQ, body.length + GUEST_LAPIC_EOI.length);
  return code;
}
