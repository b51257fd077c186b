import { describe, expect, it } from 'vitest';
import type { IoDevice, UnhandledAccess } from './index.js';
import { IoBus, NR_IOBUS_DEVS } from './index.js';

function recorder(name: string, log: string[], accept = true): IoDevice {
  return {
    write(addr, data) {
      log.push(`${name} w ${addr.toString(16)}/${data.length}`);
      return accept;
    },
    read(addr, data) {
      log.push(`${name} r ${addr.toString(16)}/${data.length}`);
      data.fill(0xab);
      return accept;
    },
  };
}

describe('IoBus (docs/SEMANTICS.md §2)', () => {
  it('§2 sort order: by address, then by end address; length 0 by address only', () => {
    const bus = new IoBus('mmio');
    const d = (n: string): IoDevice => ({ write: () => n.length > 0 });
    bus.register(0x1008n, 4, d('c'));
    bus.register(0x1000n, 8, d('b'));
    bus.register(0x1000n, 4, d('a'));
    bus.register(0x2000n, 0, d('z'));
    bus.register(0x0800n, 2, d('first'));
    expect(bus.registrations().map((r) => [r.addr, r.len])).toEqual([
      [0x800n, 2],
      [0x1000n, 4],
      [0x1000n, 8],
      [0x1008n, 4],
      [0x2000n, 0],
    ]);
  });

  it('§2 lookup: an access must lie wholly inside a registration', () => {
    const log: string[] = [];
    const bus = new IoBus('pio');
    bus.register(0x100n, 8, recorder('dev', log));
    expect(bus.write(0x104n, new Uint8Array(4))).toBe(true);
    expect(bus.write(0x106n, new Uint8Array(4))).toBe(false); // crosses the end
    expect(bus.write(0x0ffn, new Uint8Array(2))).toBe(false); // starts before
    expect(log).toEqual(['dev w 104/4']);
  });

  it('§2 length-0 registration: only an access at exactly its address, of any size', () => {
    const log: string[] = [];
    const bus = new IoBus('fast-mmio');
    bus.register(0x5000n, 0, recorder('wild', log));
    for (const len of [1, 2, 4, 8]) expect(bus.write(0x5000n, new Uint8Array(len))).toBe(true);
    expect(bus.write(0x5001n, new Uint8Array(1))).toBe(false);
    expect(log).toEqual(['wild w 5000/1', 'wild w 5000/2', 'wild w 5000/4', 'wild w 5000/8']);
  });

  it('§2 step-back and offer in sorted order until one device accepts', () => {
    const log: string[] = [];
    const bus = new IoBus('mmio');
    // Many equal registrations so the binary search lands in the middle.
    for (let i = 0; i < 7; i++) bus.register(0x1000n, 4, recorder(`d${i}`, log, i === 5));
    bus.register(0x1000n, 8, recorder('wide', log));
    expect(bus.write(0x1000n, new Uint8Array(4))).toBe(true);
    expect(log).toEqual([
      'd0 w 1000/4',
      'd1 w 1000/4',
      'd2 w 1000/4',
      'd3 w 1000/4',
      'd4 w 1000/4',
      'd5 w 1000/4',
    ]);
    log.length = 0;
    // Declined by every (address, 4) device: falls through to the wider one after them.
    const bus2 = new IoBus('mmio');
    bus2.register(0x1000n, 8, recorder('wide', log));
    bus2.register(0x1000n, 4, recorder('narrow', log, false));
    expect(bus2.write(0x1000n, new Uint8Array(4))).toBe(true);
    expect(log).toEqual(['narrow w 1000/4', 'wide w 1000/4']);
  });

  it('§2 no device accepts: not handled, and unhandled$ reports it (an exit on a vCPU)', () => {
    const bus = new IoBus('mmio');
    const seen: UnhandledAccess[] = [];
    const sub = bus.unhandled$.subscribe((a) => seen.push(a));
    bus.register(0x1000n, 4, { write: () => false });
    expect(bus.write(0x1000n, Uint8Array.of(1, 2, 3, 4))).toBe(false);
    expect(bus.read(0x9000n, new Uint8Array(2))).toBe(false);
    expect(seen.map((a) => [a.bus, a.isWrite, a.addr, a.len, [...a.data]])).toEqual([
      ['mmio', true, 0x1000n, 4, [1, 2, 3, 4]],
      ['mmio', false, 0x9000n, 2, [0, 0]],
    ]);
    sub.unsubscribe();
  });

  it('§2 reads: the accepting device fills the buffer', () => {
    const bus = new IoBus('pio');
    bus.register(0x60n, 1, {
      read: (_a, d) => {
        d[0] = 0x42;
        return true;
      },
    });
    const data = new Uint8Array(1);
    expect(bus.read(0x60n, data)).toBe(true);
    expect(data[0]).toBe(0x42);
  });

  it('§2 access sizes are 1, 2, 4 or 8', () => {
    const bus = new IoBus('mmio');
    bus.register(0n, 16, { write: () => true, read: () => true });
    for (const len of [1, 2, 4, 8]) expect(bus.write(0n, new Uint8Array(len))).toBe(true);
    for (const len of [0, 3, 16])
      expect(() => bus.write(0n, new Uint8Array(len))).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('§2 device limit: 1000 ordinary devices, ENOSPC on the next; ioeventfds are not counted', () => {
    const bus = new IoBus('mmio');
    for (let i = 0; i < 1100; i++) bus.register(BigInt(i * 4), 4, { write: () => true }, { ioeventfd: true });
    for (let i = 0; i < NR_IOBUS_DEVS; i++)
      bus.register(0x10_0000n + BigInt(i * 4), 4, { write: () => true });
    expect(bus.deviceCount).toBe(1000);
    expect(bus.ioeventfdCount).toBe(1100);
    expect(() => bus.register(0x20_0000n, 4, {})).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
    // As in kvm_io_bus_register_dev, the check applies to any registration once the limit is reached.
    expect(() => bus.register(0x20_0000n, 4, {}, { ioeventfd: true })).toThrow(
      expect.objectContaining({ code: 'ENOSPC' }),
    );
    // Dispatch still finds everything.
    expect(bus.write(0x10_0000n + 999n * 4n, new Uint8Array(4))).toBe(true);
    expect(bus.write(1099n * 4n, new Uint8Array(2))).toBe(true);
    bus.registrations()[1100]?.unregister();
    expect(() => bus.register(0x20_0000n, 4, {})).not.toThrow();
  });

  it('§2 unregister: by handle, by device (first registration), and dispose', () => {
    const bus = new IoBus('pio');
    const dev: IoDevice = { write: () => true };
    const r1 = bus.register(0x10n, 1, dev);
    bus.register(0x20n, 1, dev);
    expect(bus.unregister(dev)).toBe(true);
    expect(r1.registered).toBe(false);
    expect(bus.write(0x10n, new Uint8Array(1))).toBe(false);
    expect(bus.write(0x20n, new Uint8Array(1))).toBe(true);
    expect(bus.unregister(dev)).toBe(true);
    expect(bus.unregister(dev)).toBe(false);
    {
      using r = bus.register(0x30n, 1, dev);
      expect(r.registered).toBe(true);
      expect(bus.size).toBe(1);
    }
    expect(bus.size).toBe(0);
  });

  it('close() removes everything and completes unhandled$', () => {
    const bus = new IoBus('mmio');
    let completed = false;
    bus.unhandled$.subscribe({ complete: () => (completed = true) });
    const r = bus.register(0n, 4, {});
    bus.close();
    expect(r.registered).toBe(false);
    expect(completed).toBe(true);
  });
});

describe('IoBus lookup is the kernel bsearch + step-back (property)', () => {
  it('firstIndex equals bsearch(kvm_io_bus_cmp) stepped back, for random overlapping registrations', async () => {
    const { bsearch, ioRangeCmp } = await import('./range.js');
    let seed = 7;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    for (let round = 0; round < 50; round++) {
      const bus = new IoBus('mmio');
      for (let i = 0; i < 40; i++) bus.register(BigInt(rnd(64)), [0, 1, 2, 4, 8, 16][rnd(6)] as number, {});
      const ranges = bus.registrations().map((r) => ({ addr: r.addr, len: r.len }));
      for (let q = 0; q < 50; q++) {
        const key = { addr: BigInt(rnd(72)), len: [1, 2, 4, 8][rnd(4)] as number };
        let off = bsearch(key, ranges);
        if (off >= 0) while (off > 0 && ioRangeCmp(key, ranges[off - 1] as (typeof ranges)[0]) === 0) off--;
        expect(bus.firstIndex(key.addr, key.len)).toBe(off);
      }
    }
  });
});
