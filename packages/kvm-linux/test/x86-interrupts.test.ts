/**
 * The x86 interrupt helpers on /dev/kvm: a guest that is nothing but
 * `sti; hlt` and one handler (GUEST_LAPIC_EOI + GUEST_IRETQ) takes MSIs
 * through the IDT that setupIdt wrote and the LAPIC that enableLocalApic
 * enabled, with no set-up code of its own. Runs on this thread; the
 * watchdog turns a guest that never wakes into a failure, not a hang.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  APIC_LVT_MASKED,
  enableLocalApic,
  FREE_MEMORY_START,
  GUEST_IRETQ,
  GUEST_STI_HLT,
  interruptHandlerCode,
  LAPIC_BASE,
  LapicRegister,
  lapicRegister,
  openKvm,
  setupIdt,
  setupLongMode,
} from '../src/index.js';
import { kvmAvailable } from '../src/test-support/availability.js';
import { KvmRunWatchdog } from './watchdog.js';

const CODE = FREE_MEMORY_START + 0x8000n; // sti; hlt; jmp back
const HANDLER = CODE + 0x1000n;
const SPURIOUS = CODE + 0x1800n;
const REPORT_PORT = 0x3f0;
const VECTOR = 0x40;

/** push rax; push rdx; mov dx, REPORT_PORT; mov eax, vector; out dx, eax; pop rdx; pop rax */
function reportVector(vector: number): Uint8Array {
  return Uint8Array.of(
    0x50,
    0x52,
    0x66,
    0xba,
    REPORT_PORT & 0xff,
    REPORT_PORT >> 8,
    0xb8,
    vector,
    0,
    0,
    0,
    0xef,
    0x5a,
    0x58,
  );
}

const watchdog = new KvmRunWatchdog();
afterAll(() => watchdog.close());

describe.skipIf(!kvmAvailable)('x86 interrupt helpers on /dev/kvm', () => {
  it('setupIdt + enableLocalApic: MSIs reach the handler; its EOI lets the same vector in again; a vector without a gate shuts the guest down', () => {
    using kvm = openKvm();
    using vm = kvm.createVm();
    vm.createIrqChip();
    const ram = vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 2 << 20 })!;
    ram.bytes.set([...GUEST_STI_HLT, 0xeb, 0xfc], Number(CODE)); // sti; hlt; jmp -4
    ram.bytes.set(interruptHandlerCode(reportVector(VECTOR)), Number(HANDLER));
    ram.bytes.set(GUEST_IRETQ, Number(SPURIOUS));
    using vcpu = vm.createVcpu(0, { mainThreadRun: 'allow' });
    watchdog.watch(vcpu);
    watchdog.arm(10_000);

    setupLongMode(vm, vcpu, { entry: CODE, stack: 0x80000n });
    setupIdt(vm, vcpu, { handlers: { [VECTOR]: HANDLER, 255: SPURIOUS } });
    expect(vcpu.getSregs().idt).toEqual({ base: 0x1000n, limit: 0xfff });
    const msi = (vector: number) =>
      vm.signalMsi({ addressLo: Number(LAPIC_BASE), addressHi: 0, data: vector });
    expect(msi(VECTOR)).toBe(0); // software-disabled after reset: blocked

    enableLocalApic(vcpu);
    const page = vcpu.getLapic();
    expect(lapicRegister(page, LapicRegister.SVR) & 0x1ff).toBe(0x1ff);
    expect(lapicRegister(page, LapicRegister.LVT_LINT0) & APIC_LVT_MASKED).toBe(APIC_LVT_MASKED);
    expect(lapicRegister(page, LapicRegister.LVT_LINT1) & APIC_LVT_MASKED).toBe(APIC_LVT_MASKED);

    const reports: number[] = [];
    for (let i = 0; i < 3; i++) {
      // The same vector each time: upstream KVM delivers it again only once the handler's EOI
      // cleared its in-service bit. (This machine's kvm_pvm delivers it regardless; an EOI
      // snippet that faulted or missed the LAPIC would still show up, as a shutdown or an exit.)
      expect(msi(VECTOR)).toBe(1);
      const exit = vcpu.run();
      expect(exit).toMatchObject({ kind: 'io', direction: 'out', port: REPORT_PORT, size: 4 });
      if (exit.kind === 'io')
        reports.push(new DataView(exit.data.buffer, exit.data.byteOffset).getUint32(0, true));
    }
    expect(reports).toEqual([VECTOR, VECTOR, VECTOR]);

    // No gate for 0x41: #NP, no gate for that either, #DF, triple fault.
    expect(msi(VECTOR + 1)).toBe(1);
    expect(vcpu.run()).toEqual({ kind: 'shutdown' });
    watchdog.disarm();
  });

  it('enableLocalApic without the in-kernel irqchip fails with the ioctl error', () => {
    using kvm = openKvm();
    using vm = kvm.createVm();
    using vcpu = vm.createVcpu(0);
    expect(() => enableLocalApic(vcpu)).toThrow(
      expect.objectContaining({
        code: 'EINVAL',
        message: expect.stringMatching(/call vm\.createIrqChip\(\) before/),
      }),
    );
  });
});
