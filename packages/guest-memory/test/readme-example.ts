import { GuestMemory, GuestMemoryError } from '@rxvmm/guest-memory';

// Two regions of guest RAM, as any backend hands them out: SoftKvm's or /dev/kvm's
// `vm.memoryRegions()` fit as they are ({ guestPhysAddr, bytes }), and so does a
// vhost-user memory table (`MemoryTable.toGuestMemory` in @rxvmm/vhost-user).
const low = new Uint8Array(0x10000);
const high = new Uint8Array(new SharedArrayBuffer(0x10000)); // shareable with a worker thread
const memory = new GuestMemory([
  { guestPhysAddr: 0n, bytes: low },
  { guestPhysAddr: 0x10000n, bytes: high },
]);

memory.writeU32(0x1000n, 0xdeadbeef); // little-endian, bounds-checked
memory.write(0xfffcn, new TextEncoder().encode('spans!')); // copies may cross adjacent regions
const view = memory.slice(0x10000n, 2); // zero-copy, inside one region

let refused = '';
try {
  memory.readU64(0x1fffcn); // 4 bytes past the end of RAM: never touched
} catch (error) {
  if (error instanceof GuestMemoryError) refused = error.code;
}

export const word = memory.readU32(0x1000n).toString(16);
export const crossed = new TextDecoder().decode(view);
export { refused };
console.log(word, crossed, refused); // deadbeef s! EFAULT
