// The README example, checked.
import { expect, it } from 'vitest';
import { IoBus } from './index.js';

it('README: register, dispatch, unhandled$', () => {
  const bus = new IoBus('mmio');
  const log: string[] = [];
  bus.unhandled$.subscribe((a) =>
    log.push(`exit ${a.isWrite ? 'write' : 'read'} ${a.addr.toString(16)} ${a.len}`),
  );
  using uart = bus.register(0x1000_0000n, 8, {
    write: (addr, data) => {
      log.push(`uart write ${addr.toString(16)} ${data[0]}`);
      return true;
    },
    read: (_addr, data) => {
      data[0] = 0x60;
      return true;
    },
  });
  expect(uart.registered).toBe(true);
  expect(bus.write(0x1000_0000n, Uint8Array.of(0x41))).toBe(true);
  const status = new Uint8Array(1);
  expect(bus.read(0x1000_0005n, status)).toBe(true);
  expect(status[0]).toBe(0x60);
  expect(bus.write(0x2000_0000n, new Uint8Array(4))).toBe(false);
  expect(log).toEqual(['uart write 10000000 65', 'exit write 20000000 4']);
});
