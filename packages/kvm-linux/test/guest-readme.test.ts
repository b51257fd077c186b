/** guest/README.md's example, as a test. */
import { describe, expect, it } from 'vitest';
import { openKvm } from '../src/index.js';
import { kvmAvailable } from '../src/test-support/availability.js';
import { startGuest } from './guests.js';

describe.skipIf(!kvmAvailable)('guest/README.md example', () => {
  it('loads mmio-writer and runs it to its MMIO exit', () => {
    using kvm = openKvm();
    using vm = kvm.createVm();
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 2 << 20 });
    using vcpu = vm.createVcpu(0);
    startGuest(vm, vcpu, 'mmio-writer', { addr: 0xd000_0000n, len: 4, value: 1n, count: 1 });
    expect(vcpu.run()).toMatchObject({ kind: 'mmio', isWrite: true, addr: 0xd000_0000n, len: 4 });
  });
});
