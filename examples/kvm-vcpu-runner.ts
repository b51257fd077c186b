/**
 * (b) soft-kvm-doorbell.ts on /dev/kvm: the same doorbell, back-end, irqfd and guest handler,
 * with a real x86-64 guest and the vCPU on its own thread (`VcpuRunner`).
 *
 * Why a thread of its own: `vcpu.run()` is KVM_RUN, which blocks the calling thread until
 * the guest exits. The doorbell is an ioeventfd, so it never exits: the guest rings it and
 * sleeps in `hlt` until the back-end's interrupt. Run on the main thread, KVM_RUN would
 * block the event loop, so the kick eventfd's `signals$` would never fire, the back-end
 * would never run, and the program would hang silently (kvm-linux warns once when that
 * happens). With `VcpuRunner` the worker blocks in KVM_RUN and the main thread's event loop
 * serves the kick; exits (here, the guest's reports) are handled in the worker by
 * kvm-exit-handler.ts and posted back. Needs /dev/kvm.
 *
 * Run: node dist/kvm-vcpu-runner.js
 */
import * as assert from 'node:assert/strict';
import { signalEach } from '@rxvmm/eventfd';
import { EventFd } from '@rxvmm/eventfd/linux';
import { GuestMemory } from '@rxvmm/guest-memory';
import { IOEVENTFD_FLAG_DATAMATCH } from '@rxvmm/kvm';
import {
  assertOutsideBootArea,
  GUEST_IRETQ,
  interruptHandlerCode,
  kvmAvailability,
  openKvm,
  VcpuRunner,
} from '@rxvmm/kvm-linux';
import { firstValueFrom, map, toArray } from 'rxjs';
import type { GuestLayout } from './kvm-exit-handler.js';

const availability = kvmAvailability();
if (!availability.available) {
  console.log(`skipped: ${availability.reason}`);
  process.exit(0);
}

const REQUEST = 0x2_0000n; // the same addresses as the SoftKvm version: outside the boot tables
const RESPONSE = 0x2_0004n;
const DOORBELL = 0xd000_0050n;
const layout: GuestLayout = {
  entry: 0x1_0000n,
  stack: 0x8_0000n,
  handlers: { 64: 0x1_1000n, 255: 0x1_1800n }, // the MSI's vector, the local APIC's spurious one
  reportPort: 0x3f0,
  donePort: 0x3f4,
};
assertOutsideBootArea('RESPONSE', RESPONSE, 4n); // setupLongMode's page tables are at 0x2000-0x7fff

const u32 = (v: bigint | number) => [0, 8, 16, 24].map((s) => (Number(v) >>> s) & 0xff);
// for (ecx = 1; ecx != 4; ecx++) { cli; [REQUEST] = ecx * 7; [DOORBELL] = 0; sti; hlt } out 0x3f4
const loop = [
  ...[0xfa], // cli: the interrupt must not arrive before hlt
  ...[0x6b, 0xc1, 0x07], // imul eax, ecx, 7
  ...[0x89, 0x04, 0x25, ...u32(REQUEST)], // mov [REQUEST], eax
  ...[0xba, ...u32(DOORBELL)], // mov edx, DOORBELL
  ...[0xc7, 0x02, ...u32(0)], // mov dword [rdx], 0: the doorbell (no exit: an ioeventfd)
  ...[0xfb, 0xf4], // sti; hlt: sleep until the interrupt (taken right after sti)
  ...[0xff, 0xc1, 0x83, 0xf9, 0x04], // inc ecx; cmp ecx, 4
];
const main = [0xb9, ...u32(1), ...loop, 0x75, 0x100 - loop.length - 2, 0x66, 0xba, 0xf4, 0x03, 0xee, 0xf4];
// The handler: mov eax, [RESPONSE]; out 0x3f0, eax (an exit: the report); then EOI and iretq.
const report = [0x50, 0x52, 0x8b, 0x04, 0x25, ...u32(RESPONSE), 0x66, 0xba, 0xf0, 0x03, 0xef, 0x5a, 0x58];

const kvm = openKvm();
const vm = kvm.createVm();
vm.createIrqChip(); // the in-kernel local APIC, IOAPIC and PIC (before any vCPU)
const ram = vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 2 << 20 })!;
ram.bytes.set(main, Number(layout.entry));
ram.bytes.set(interruptHandlerCode(Uint8Array.from(report)), Number(layout.handlers[0x40]));
ram.bytes.set(GUEST_IRETQ, Number(layout.handlers[0xff]));
const memory = new GuestMemory(vm.memoryRegions());

// The wiring, as on SoftKvm; here the kernel does the matching and the injection.
const kick = new EventFd();
const call = new EventFd();
vm.ioeventfd({ addr: DOORBELL, len: 4, fd: kick, flags: IOEVENTFD_FLAG_DATAMATCH, datamatch: 0n });
vm.setGsiRouting([{ gsi: 24, type: 'msi', addressLo: 0xfee0_0000, addressHi: 0, data: 0x40 }]);
vm.irqfd({ fd: call, gsi: 24 });
const backend = kick.signals$ // a libuv poll on the eventfd, on this (main) thread
  .pipe(
    map(() => memory.writeU32(RESPONSE, memory.readU32(REQUEST) ** 2)),
    signalEach(call),
  )
  .subscribe();

const runner = await VcpuRunner.start({
  vm,
  id: 0,
  handler: new URL('./kvm-exit-handler.js', import.meta.url), // built JavaScript: it runs in the worker
  data: layout,
});
const reports = firstValueFrom(runner.messages$.pipe(toArray())); // completes when the run ends
const result = await runner.done;
backend.unsubscribe();
kick.close();
call.close();
vm.close();
await vm.whenReleased(); // guest RAM is unmapped once the worker is gone
kvm.close();

assert.equal(result.reason, 'handler-stop', JSON.stringify(result));
assert.deepEqual(await reports, [49, 196, 441]);
const exits = runner.counters.snapshot();
assert.equal(exits.mmio, 0); // the doorbell never exited
console.log(`guest saw ${(await reports).join(', ')}; exits: ${exits.io} io, ${exits.mmio} mmio`);
