// The README example, checked.
import { SoftEventFd } from '@rxvmm/eventfd';
import { IoBus } from '@rxvmm/io-bus';
import { IOEVENTFD_FLAG_DATAMATCH } from '@rxvmm/kvm';
import { expect, it } from 'vitest';
import { IoEventFds } from './index.js';

it('README: a doorbell write is absorbed and signals; another value falls through', () => {
  const buses = { pio: new IoBus('pio'), mmio: new IoBus('mmio'), fastMmio: new IoBus('fast-mmio') };
  const ioeventfds = new IoEventFds(buses);
  using kick = new SoftEventFd({ nonblock: true });
  ioeventfds.ioeventfd({
    addr: 0xd000_0050n,
    len: 4,
    fd: kick.fd,
    flags: IOEVENTFD_FLAG_DATAMATCH,
    datamatch: 1n,
  });
  expect(buses.mmio.write(0xd000_0050n, Uint8Array.of(1, 0, 0, 0))).toBe(true);
  expect(buses.mmio.write(0xd000_0050n, Uint8Array.of(2, 0, 0, 0))).toBe(false);
  expect(kick.read()).toBe(1n);
});
