/**
 * (a) SoftKvm: a doorbell that never exits, a back-end on `signals$`, an irqfd, a guest
 * interrupt handler.
 *
 * The guest writes a request into RAM and rings a doorbell (an MMIO write). The VMM has
 * registered that address as an ioeventfd, so the write does not exit: SoftKvm signals the
 * kick eventfd instead. The back-end, subscribed to the kick's `signals$`, squares the
 * request into the response word and signals the call eventfd, which an irqfd turns into an
 * MSI. The guest's interrupt handler reports the response on port 0x3f0 (that one is an
 * exit the VMM sees). Everything is on one thread: when the guest sleeps, `run()` returns
 * `intr` and the VMM awaits `whenRunnable()`, which lets the event loop run the back-end.
 * kvm-vcpu-runner.ts is the same machine on /dev/kvm.
 *
 * Run: node dist/soft-kvm-doorbell.js
 */
import * as assert from 'node:assert/strict';
import { SoftEventFd, signalEach } from '@rxvmm/eventfd';
import { GuestMemory } from '@rxvmm/guest-memory';
import { IOEVENTFD_FLAG_DATAMATCH } from '@rxvmm/kvm';
import { type GuestProgram, SoftKvm } from '@rxvmm/kvm-soft';
import { map } from 'rxjs';

const REQUEST = 0x2_0000n; // guest RAM: the request word, then the response word
const RESPONSE = 0x2_0004n;
const DOORBELL = 0xd000_0050n; // a virtio-mmio QueueNotify register; the value is the queue index
const REPORT_PORT = 0x3f0;
const DONE_PORT = 0x3f4;
const GSI = 24; // routed as an MSI to vector 0x40 of the local APIC
const MSI = { addressLo: 0xfee0_0000, addressHi: 0, data: 0x40 };

// The guest, as a TypeScript program: each `yield*` is an instruction that may leave the guest.
const guest: GuestProgram = function* (g) {
  let answered = 0;
  g.setInterruptHandler(function* () {
    yield* g.pioOut(REPORT_PORT, 4, g.readU32(RESPONSE)); // an exit: the VMM prints it
    answered++;
    yield* g.eoi();
  });
  yield* g.enableApic({ maskLint0: true });
  for (let i = 1; i <= 3; i++) {
    g.cli(); // the interrupt must not come before we sleep
    g.writeU32(REQUEST, i * 7);
    yield* g.mmioWrite(DOORBELL, 4, 0); // kick queue 0: the ioeventfd absorbs it, no exit
    while (answered < i) yield* g.waitForInterrupt(); // sti; hlt
  }
  yield* g.pioOut(DONE_PORT, 1, 0);
};

using kvm = new SoftKvm();
using vm = kvm.createVm();
vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 1 << 20 });
vm.createIrqChip();
const memory = new GuestMemory(vm.memoryRegions()); // the VMM's bounds-checked view of guest RAM

// The wiring: doorbell -> kick eventfd; call eventfd -> GSI 24 -> MSI vector 0x40.
using kick = new SoftEventFd();
using call = new SoftEventFd();
vm.ioeventfd({ addr: DOORBELL, len: 4, fd: kick, flags: IOEVENTFD_FLAG_DATAMATCH, datamatch: 0n });
vm.setGsiRouting([{ gsi: GSI, type: 'msi', ...MSI }]);
vm.irqfd({ fd: call, gsi: GSI });

// The back-end: woken by the kick, answers in guest RAM, interrupts the guest.
const backend = kick.signals$
  .pipe(
    map(() => memory.readU32(REQUEST)),
    map((request) => memory.writeU32(RESPONSE, request * request)),
    signalEach(call), // one irqfd signal per request served
  )
  .subscribe();

// The vCPU loop: only the reports and DONE exit; never the doorbell.
const reports: number[] = [];
const exits: string[] = [];
using vcpu = vm.createSoftVcpu(0);
vcpu.load(guest);
for (;;) {
  const exit = vcpu.run();
  if (exit.kind === 'intr') {
    await vcpu.whenRunnable(); // the guest sleeps: the event loop runs the back-end meanwhile
    continue;
  }
  exits.push(exit.kind === 'io' ? `io 0x${exit.port.toString(16)}` : exit.kind);
  if (exit.kind === 'io' && exit.port === REPORT_PORT) {
    reports.push(new DataView(exit.data.buffer, exit.data.byteOffset, 4).getUint32(0, true));
  } else break;
}
backend.unsubscribe();

assert.deepEqual(reports, [49, 196, 441]);
assert.deepEqual(exits, ['io 0x3f0', 'io 0x3f0', 'io 0x3f0', 'io 0x3f4']); // no MMIO exit
console.log(`guest saw ${reports.join(', ')}; exits: ${exits.join(', ')} (the doorbell never exited)`);
