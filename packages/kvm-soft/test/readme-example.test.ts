// The first README example (a guest program, an MMIO read exit answered by the VMM, a PIO exit).
import { expect, it } from 'vitest';
import { SoftKvm } from '../src/index.js';

it('README: an MMIO read exit answered by the VMM reaches the guest program', () => {
  using kvm = new SoftKvm();
  using vm = kvm.createVm();
  vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 0x10000 });

  using vcpu = vm.createSoftVcpu(0);
  vcpu.load(function* (g) {
    g.writeU32(0x100n, 7);
    const status = yield* g.mmioRead(0xd000_0000n, 4);
    yield* g.pioOut(0x3f8, 1, Number(status) + g.readU32(0x100n));
  });

  const exit = vcpu.run();
  expect(exit).toMatchObject({ kind: 'mmio', isWrite: false, addr: 0xd000_0000n, len: 4 });
  if (exit.kind === 'mmio') exit.data.set([35, 0, 0, 0]);
  const out = vcpu.run();
  expect(out).toMatchObject({ kind: 'io', direction: 'out', port: 0x3f8, size: 1, count: 1 });
  expect(out.kind === 'io' && [...out.data]).toEqual([42]);
});
