// The README's RxJS composition example, as a test: a guest kicks a queue
// through an ioeventfd doorbell, a back-end subscribed to the kick eventfd's
// signals$ completes the work and signals an irqfd, the guest's interrupt
// handler sees the completion, and the VMM never sees an exit for the doorbell.
import { SoftEventFd, signalEach } from '@rxvmm/eventfd';
import { IOEVENTFD_FLAG_DATAMATCH, type VcpuExit } from '@rxvmm/kvm';
import { map, tap } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { type GuestProgram, SoftKvm } from '../src/index.js';

// Both at or above 0x8000 (kvm-linux's FREE_MEMORY_START), as the README says: on /dev/kvm the
// long-mode page tables and the IDT live below it.
const REQUEST = 0x9000n; // one request slot in guest RAM
const RESPONSE = 0x9004n; // where the back-end writes its answer
const DOORBELL = 0xd000_0050n; // virtio-mmio QueueNotify-style doorbell
const REPORT_PORT = 0x3f0;
const DONE_PORT = 0x3f4;

const guest: GuestProgram = function* (g) {
  const seen: number[] = [];
  // Interrupt handler: pick up the completion, EOI.
  g.setInterruptHandler(function* () {
    seen.push(g.readU32(RESPONSE));
    yield* g.eoi();
  });
  yield* g.enableApic({ maskLint0: true });
  for (let i = 1; i <= 3; i++) {
    g.writeU32(REQUEST, i * 7);
    yield* g.mmioWrite(DOORBELL, 2, 0); // kick queue 0: absorbed by the ioeventfd
    while (seen.length < i) {
      yield* g.waitForInterrupt(); // sti; hlt
      g.cli();
    }
  }
  for (const value of seen) yield* g.pioOut(REPORT_PORT, 4, value);
  yield* g.pioOut(DONE_PORT, 1, 0);
};

describe('RxJS composition: ioeventfd doorbell -> back-end -> irqfd -> guest interrupt', () => {
  it('the guest gets every completion through its interrupt handler; no exit for the doorbell', async () => {
    using kvm = new SoftKvm();
    using vm = kvm.createVm();
    const ram = vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 0x10000 });
    if (!ram) throw new Error('no RAM');
    vm.createIrqChip();

    // Wiring: doorbell -> kick eventfd; call eventfd -> GSI 24 -> MSI vector 0x41 to APIC 0.
    using kick = new SoftEventFd();
    using call = new SoftEventFd();
    vm.ioeventfd({ addr: DOORBELL, len: 2, fd: kick, flags: IOEVENTFD_FLAG_DATAMATCH, datamatch: 0n });
    vm.setGsiRouting([{ gsi: 24, type: 'msi', addressLo: 0xfee0_0000, addressHi: 0, data: 0x41 }]);
    vm.irqfd({ fd: call, gsi: 24 });

    // The back-end: kicks in, completions out, composed with ordinary RxJS operators.
    const mem = new DataView(ram.bytes.buffer, ram.bytes.byteOffset, ram.bytes.byteLength);
    const backend = kick.signals$
      .pipe(
        map(() => mem.getUint32(Number(REQUEST), true)),
        tap((request) => mem.setUint32(Number(RESPONSE), request * request, true)),
        signalEach(call),
      )
      .subscribe();

    // The VMM: runs the vCPU and records every exit it sees.
    using vcpu = vm.createSoftVcpu(0);
    vcpu.load(guest);
    const exits: VcpuExit[] = [];
    const reports: number[] = [];
    for (;;) {
      const exit = vcpu.run();
      if (exit.kind === 'intr') {
        await vcpu.whenRunnable(); // the guest sleeps until the back-end's interrupt
        continue;
      }
      exits.push(exit);
      if (exit.kind === 'io' && exit.port === REPORT_PORT)
        reports.push(new DataView(exit.data.buffer, exit.data.byteOffset).getUint32(0, true));
      if (exit.kind === 'io' && exit.port === DONE_PORT) break;
      if (exit.kind !== 'io') throw new Error(`unexpected exit ${exit.kind}`);
    }
    backend.unsubscribe();

    expect(reports).toEqual([49, 196, 441]); // (7i)^2 for i = 1..3, seen by the interrupt handler
    expect(exits.filter((e) => e.kind === 'mmio')).toEqual([]); // the doorbell never exited
    expect(exits).toHaveLength(4); // only the 3 reports and DONE
  });
});
