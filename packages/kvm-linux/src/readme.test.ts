// The README examples, checked.
import { EventFd } from '@rxvmm/eventfd';
import { firstValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import {
  FREE_MEMORY_START,
  GUEST_STI_HLT,
  interruptHandlerCode,
  openKvm,
  setupLongMode,
  VcpuRunner,
} from './index.js';
import { kvmAvailable } from './test-support/availability.js';

describe.skipIf(!kvmAvailable)('README', () => {
  it('a guest on the main thread', () => {
    const seen: number[][] = [];
    using kvm = openKvm();
    using vm = kvm.createVm();
    const ram = vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 1 << 20 })!;
    // 64-bit: mov dx, 0x3f0; in eax, dx; out dx, eax; hlt
    ram.bytes.set([0x66, 0xba, 0xf0, 0x03, 0xed, 0xef, 0xf4], 0x10000);
    using vcpu = vm.createVcpu(0);
    setupLongMode(vm, vcpu, { entry: 0x10000n, stack: 0x80000n });
    let last = '';
    for (;;) {
      const exit = vcpu.run();
      last = exit.kind;
      if (exit.kind === 'io' && exit.direction === 'in') exit.data.set([1, 2, 3, 4]);
      else if (exit.kind === 'io') seen.push([...exit.data]);
      else break;
    }
    expect(seen).toEqual([[1, 2, 3, 4]]);
    expect(last).toBe('hlt');
  });

  it('VcpuRunner with the exit-handler module', async () => {
    const kvm = openKvm();
    const vm = kvm.createVm();
    vm.createIrqChip();
    // 64-bit: mov dx,0x3f8; mov al,'h'; out dx,al; mov al,'i'; out dx,al; mov dx,0x3f4; out dx,al
    const guestImage = [
      0x66, 0xba, 0xf8, 0x03, 0xb0, 0x68, 0xee, 0xb0, 0x69, 0xee, 0x66, 0xba, 0xf4, 0x03, 0xee,
    ];
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 64 << 20 })!.bytes.set(guestImage, 0x10000);
    const runner = await VcpuRunner.start({
      vm,
      id: 0,
      handler: new URL('./runner/fixtures/readme-handler.mjs', import.meta.url),
      data: { entry: 0x10000n, uartPort: 0x3f8 },
    });
    const text = firstValueFrom(runner.messages$.pipe(toArray()));
    const result = await runner.done;
    expect(result.reason).toBe('handler-stop');
    expect((await text).join('')).toBe('hi');
    expect(runner.counters.snapshot()).toMatchObject({ exits: 3, io: 3, ioOut: 3 });
    vm.close();
    await vm.whenReleased();
    kvm.close();
  });

  it('interrupts: setupIdt, enableLocalApic and the guest-side EOI', async () => {
    const VECTOR = 0x40;
    const CODE = FREE_MEMORY_START; // sti; hlt; jmp back
    const ISR = CODE + 0x100n; // reports its vector on port 0x3f0, EOI, iretq
    using kvm = openKvm();
    const vm = kvm.createVm();
    vm.createIrqChip(); // before the vCPU: the LAPIC is the kernel's
    const ram = vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 2 << 20 })!;
    ram.bytes.set([...GUEST_STI_HLT, 0xeb, 0xfc], Number(CODE));
    // push rax; push rdx; mov dx, 0x3f0; mov al, VECTOR; out dx, al; pop rdx; pop rax
    const report = [0x50, 0x52, 0x66, 0xba, 0xf0, 0x03, 0xb0, VECTOR, 0xee, 0x5a, 0x58];
    ram.bytes.set(interruptHandlerCode(Uint8Array.from(report)), Number(ISR));

    // The device's interrupt: an irqfd on GSI 24, routed as an MSI to APIC 0.
    using irq = new EventFd();
    vm.setGsiRouting([{ gsi: 24, type: 'msi', addressLo: 0xfee0_0000, addressHi: 0, data: VECTOR }]);
    vm.irqfd({ fd: irq, gsi: 24 });

    const runner = await VcpuRunner.start({
      vm,
      id: 0,
      handler: new URL('./runner/fixtures/interrupt-handler.mjs', import.meta.url),
      data: { entry: CODE, isr: ISR, vector: VECTOR },
    });
    const taken: number[] = [];
    runner.onMessage((vector) => {
      taken.push(vector as number);
      if (taken.length < 3) irq.write(1n);
      else void runner.stop();
    });
    irq.write(1n); // start() resolved after setup: the LAPIC is enabled
    await runner.done;
    expect(taken).toEqual([VECTOR, VECTOR, VECTOR]);
    vm.close();
    await vm.whenReleased();
  });
});
