// The README example, checked.
import { SoftEventFd } from '@rxvmm/eventfd';
import { IRQCHIP_IOAPIC } from '@rxvmm/kvm';
import { expect, it } from 'vitest';
import { IrqFds, IrqRouter } from './index.js';

it('README: two signals coalesce into one pulse of IOAPIC pin 5', async () => {
  const log: string[] = [];
  const router = new IrqRouter({
    setPicIrq: () => 1,
    setIoapicIrq: (pin, _source, level) => {
      log.push(`IOAPIC pin ${pin} -> ${level ? 1 : 0}`);
      return 1;
    },
    deliverMsi: (msi) => {
      log.push(`MSI data ${msi.data}`);
      return 1;
    },
  });
  router.setRouting([
    { gsi: 5, type: 'irqchip', irqchip: IRQCHIP_IOAPIC, pin: 5 },
    { gsi: 40, type: 'msi', addressLo: 0xfee0_0000, addressHi: 0, data: 0x41 },
  ]);
  const irqfds = new IrqFds(router);
  using call = new SoftEventFd();
  irqfds.irqfd({ fd: call.fd, gsi: 5 });
  call.write(1n);
  call.write(1n);
  await new Promise((r) => setImmediate(r));
  expect(log).toEqual(['IOAPIC pin 5 -> 1', 'IOAPIC pin 5 -> 0']);
});
