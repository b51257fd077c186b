/**
 * Hand-assembled x86 snippets for the unit tests (the real test guests are
 * built from source in guest/). Each is small enough to check by eye.
 */

/** Guest-physical address the unit tests load code at (above the boot tables). */
export const CODE_GPA = 0x10000n;
export const STACK_GPA = 0x80000n;
export const REPORT_PORT = 0x3f0;
export const DONE_PORT = 0x3f4;
export const MMIO_GPA = 0xd000_0000n;

/**
 * 64-bit: in eax,0x3f0; out 0x3f0,eax; mov eax,[0xd0000000]; out 0x3f0,eax;
 * mov [0xd0000000], eax; out 0x3f4,al; hlt
 */
export const ECHO_GUEST_64 = new Uint8Array([
  0x66,
  0xba,
  0xf0,
  0x03, // mov dx, 0x3f0
  0xed, // in eax, dx
  0xef, // out dx, eax
  0x48,
  0xbb,
  0x00,
  0x00,
  0x00,
  0xd0,
  0x00,
  0x00,
  0x00,
  0x00, // mov rbx, 0xd0000000
  0x8b,
  0x03, // mov eax, [rbx]
  0xef, // out dx, eax
  0x89,
  0x03, // mov [rbx], eax
  0x66,
  0xba,
  0xf4,
  0x03, // mov dx, 0x3f4
  0xee, // out dx, al
  0xf4, // hlt
]);

/** 16-bit real mode: mov dx,0x3f0; mov ax,0x1234; out dx,ax; hlt */
export const REAL_MODE_GUEST = new Uint8Array([0xba, 0xf0, 0x03, 0xb8, 0x34, 0x12, 0xef, 0xf4]);

/** 64-bit: spins forever (jmp $): only a kick gets it out of KVM_RUN. */
export const SPIN_GUEST_64 = new Uint8Array([0xeb, 0xfe]);

/** 64-bit: cli; hlt; jmp back: with the in-kernel irqchip it sleeps in the kernel forever. */
export const SLEEP_GUEST_64 = new Uint8Array([0xfa, 0xf4, 0xeb, 0xfc]);

/** 64-bit: N doorbells: mov ecx,N; mov rbx,addr; loop: mov [rbx],eax; dec ecx; jnz loop; out 0x3f4,al; hlt */
export function doorbellGuest64(count: number, addr: bigint): Uint8Array {
  const n = new Uint8Array(new Uint32Array([count]).buffer);
  const a = new Uint8Array(new BigUint64Array([addr]).buffer);
  return new Uint8Array([
    0xb9,
    ...n, // mov ecx, count
    0x48,
    0xbb,
    ...a, // mov rbx, addr
    0x89,
    0x03, // loop: mov [rbx], eax
    0xff,
    0xc9, // dec ecx
    0x75,
    0xfa, // jnz loop
    0x66,
    0xba,
    0xf4,
    0x03, // mov dx, 0x3f4
    0xee, // out dx, al
    0xf4, // hlt
  ]);
}
