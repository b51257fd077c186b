// The README examples, checked.
import { firstValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { openKvm, setupLongMode, VcpuRunner } from './index.js';
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
});
