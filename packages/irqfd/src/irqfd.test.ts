import { closeSync, openSync } from 'node:fs';
import { SoftEventFd } from '@rxvmm/eventfd';
import {
  IRQFD_FLAG_DEASSIGN as DEASSIGN,
  IRQCHIP_IOAPIC,
  IRQCHIP_PIC_MASTER,
  type MsiMessage,
  IRQFD_FLAG_RESAMPLE as RESAMPLE,
} from '@rxvmm/kvm';
import { describe, expect, it, vi } from 'vitest';
import {
  defaultX86Routing,
  type InterruptSink,
  IRQFD_RESAMPLE_IRQ_SOURCE_ID,
  IrqFds,
  IrqRouter,
  USERSPACE_IRQ_SOURCE_ID,
} from './index.js';

const code = (c: string) => expect.objectContaining({ code: c });
const flush = () => new Promise<void>((r) => setImmediate(r));

/** A sink that records what reaches the interrupt controller and keeps per-source levels. */
function recordingSink() {
  const log: string[] = [];
  const levels = new Map<string, Set<number>>();
  const set = (chip: string, pin: number, src: number, level: boolean) => {
    log.push(`${chip}${pin} src${src}=${level ? 1 : 0}`);
    const key = `${chip}${pin}`;
    const s = levels.get(key) ?? new Set();
    if (level) s.add(src);
    else s.delete(src);
    levels.set(key, s);
    return 1;
  };
  const sink: InterruptSink = {
    setPicIrq: (pin, src, level) => set('pic', pin, src, level),
    setIoapicIrq: (pin, src, level) => set('ioapic', pin, src, level),
    deliverMsi: (msi: MsiMessage) => {
      log.push(`msi ${msi.addressLo.toString(16)}:${msi.data}`);
      return 1;
    },
  };
  const line = (key: string) => (levels.get(key)?.size ?? 0) > 0;
  return { sink, log, line };
}

function setup(routes = defaultX86Routing()) {
  const rec = recordingSink();
  const router = new IrqRouter(rec.sink);
  router.setRouting(routes);
  const irqfds = new IrqFds(router);
  return { ...rec, router, irqfds };
}

describe('irqfd assign/deassign errno (docs/SEMANTICS.md §4)', () => {
  it('§4 a flag outside DEASSIGN|RESAMPLE: EINVAL', () => {
    const { irqfds } = setup();
    using efd = new SoftEventFd();
    expect(() => irqfds.irqfd({ fd: efd.fd, gsi: 5, flags: 4 })).toThrow(code('EINVAL'));
  });
  it('§4 assign before the VM has an irqchip: EINVAL', () => {
    const router = new IrqRouter(recordingSink().sink);
    const irqfds = new IrqFds(router, { hasIrqchip: () => false });
    using efd = new SoftEventFd();
    expect(() => irqfds.irqfd({ fd: efd.fd, gsi: 5 })).toThrow(code('EINVAL'));
  });
  it('§4 fd not open EBADF, not an eventfd EINVAL; the same for resamplefd with RESAMPLE', () => {
    const { irqfds } = setup();
    using efd = new SoftEventFd();
    const other = openSync('/dev/null', 'r');
    try {
      expect(() => irqfds.irqfd({ fd: 0x7fff_fff0, gsi: 5 })).toThrow(code('EBADF'));
      expect(() => irqfds.irqfd({ fd: other, gsi: 5 })).toThrow(code('EINVAL'));
      expect(() => irqfds.irqfd({ fd: efd.fd, gsi: 5, flags: RESAMPLE, resamplefd: 0x7fff_fff0 })).toThrow(
        code('EBADF'),
      );
      expect(() => irqfds.irqfd({ fd: efd.fd, gsi: 5, flags: RESAMPLE, resamplefd: other })).toThrow(
        code('EINVAL'),
      );
    } finally {
      closeSync(other);
    }
    expect(irqfds.list()).toHaveLength(0);
  });
  it('§4 an eventfd already bound to any GSI: EBUSY; several eventfds may target one GSI; any GSI number', () => {
    const { irqfds } = setup();
    using a = new SoftEventFd();
    using b = new SoftEventFd();
    irqfds.irqfd({ fd: a.fd, gsi: 5 });
    expect(() => irqfds.irqfd({ fd: a.fd, gsi: 6 })).toThrow(code('EBUSY'));
    expect(() => irqfds.irqfd({ fd: a.fd, gsi: 5 })).toThrow(code('EBUSY'));
    irqfds.irqfd({ fd: b.fd, gsi: 5 });
    using c = new SoftEventFd();
    irqfds.irqfd({ fd: c.fd, gsi: 0xffff_fff0 });
    expect(irqfds.list()).toHaveLength(3);
  });
  it('§4 deassign: fd must be an eventfd; detaches that (eventfd, GSI); none matching still succeeds', () => {
    const { irqfds } = setup();
    using a = new SoftEventFd();
    irqfds.irqfd({ fd: a.fd, gsi: 5 });
    expect(() => irqfds.irqfd({ fd: 0x7fff_fff0, gsi: 5, flags: DEASSIGN })).toThrow(code('EBADF'));
    irqfds.irqfd({ fd: a.fd, gsi: 6, flags: DEASSIGN }); // other GSI: nothing, no error
    expect(irqfds.list()).toHaveLength(1);
    irqfds.irqfd({ fd: a.fd, gsi: 5, flags: DEASSIGN });
    expect(irqfds.list()).toHaveLength(0);
    irqfds.irqfd({ fd: a.fd, gsi: 5, flags: DEASSIGN });
  });
});

describe('irqfd injection (docs/SEMANTICS.md §4)', () => {
  it('§4 edge: a signal pulses every irqchip route of the GSI (userspace source), asynchronously', async () => {
    const { irqfds, log } = setup();
    using efd = new SoftEventFd({ nonblock: true });
    irqfds.irqfd({ fd: efd.fd, gsi: 3 });
    efd.write(1n);
    expect(log).toEqual([]);
    await flush();
    expect(log).toEqual(['pic3 src0=1', 'ioapic3 src0=1', 'pic3 src0=0', 'ioapic3 src0=0']);
    expect(() => efd.read()).toThrow(code('EAGAIN')); // the irqfd consumed the counter
  });
  it('the default work queue is queueMicrotask called as a plain function (a browser refuses any other this)', async () => {
    const real = globalThis.queueMicrotask;
    vi.stubGlobal('queueMicrotask', function (this: unknown, task: () => void) {
      if (this !== undefined && this !== globalThis) throw new TypeError('Illegal invocation');
      real(task);
    });
    try {
      const { irqfds, log } = setup([{ gsi: 5, type: 'irqchip', irqchip: IRQCHIP_IOAPIC, pin: 5 }]);
      using efd = new SoftEventFd();
      irqfds.irqfd({ fd: efd.fd, gsi: 5 });
      efd.write(1n);
      await flush();
      expect(log).toEqual(['ioapic5 src0=1', 'ioapic5 src0=0']);
    } finally {
      vi.unstubAllGlobals();
    }
  });
  it('§4 signals before the injection runs coalesce into one injection', async () => {
    const { irqfds, log } = setup([{ gsi: 9, type: 'irqchip', irqchip: IRQCHIP_IOAPIC, pin: 9 }]);
    using efd = new SoftEventFd();
    irqfds.irqfd({ fd: efd.fd, gsi: 9 });
    efd.write(1n);
    efd.write(1n);
    efd.write(3n);
    await flush();
    expect(log).toEqual(['ioapic9 src0=1', 'ioapic9 src0=0']);
    expect(irqfds.list()[0]?.injections).toBe(1);
  });
  it('§4 an eventfd already signalled at assign injects at once', async () => {
    const { irqfds, log } = setup([{ gsi: 4, type: 'irqchip', irqchip: IRQCHIP_IOAPIC, pin: 4 }]);
    using efd = new SoftEventFd({ initval: 2 });
    irqfds.irqfd({ fd: efd.fd, gsi: 4 });
    await flush();
    expect(log).toEqual(['ioapic4 src0=1', 'ioapic4 src0=0']);
  });
  it('§4 MSI route: delivered directly', async () => {
    const { irqfds, log } = setup([
      { gsi: 30, type: 'msi', addressLo: 0xfee0_0000, addressHi: 0, data: 0x41 },
    ]);
    using efd = new SoftEventFd();
    irqfds.irqfd({ fd: efd.fd, gsi: 30 });
    efd.write(1n);
    await flush();
    expect(log).toEqual(['msi fee00000:65']);
  });
  it('§4 no route: the signal is dropped silently, the irqfd stays and follows later route changes (§5)', async () => {
    const { irqfds, log, router } = setup([]);
    using efd = new SoftEventFd();
    irqfds.irqfd({ fd: efd.fd, gsi: 40 });
    efd.write(1n);
    await flush();
    expect(log).toEqual([]);
    expect(irqfds.list()).toHaveLength(1);
    router.setRouting([{ gsi: 40, type: 'msi', addressLo: 0xfee0_0000, addressHi: 0, data: 0x22 }]);
    efd.write(1n);
    await flush();
    expect(log).toEqual(['msi fee00000:34']);
    router.setRouting([{ gsi: 40, type: 'irqchip', irqchip: IRQCHIP_PIC_MASTER, pin: 1 }]);
    efd.write(1n);
    await flush();
    expect(log.slice(1)).toEqual(['pic1 src0=1', 'pic1 src0=0']);
  });
  it('§4 closing the eventfd (hang-up) detaches the irqfd', async () => {
    const { irqfds } = setup();
    const efd = new SoftEventFd();
    irqfds.irqfd({ fd: efd.fd, gsi: 5 });
    efd.close();
    expect(irqfds.list()).toHaveLength(0);
  });
  it('§4 after deassign returns no further injection happens (a queued one is flushed first)', async () => {
    const { irqfds, log } = setup([{ gsi: 7, type: 'irqchip', irqchip: IRQCHIP_IOAPIC, pin: 7 }]);
    using efd = new SoftEventFd();
    irqfds.irqfd({ fd: efd.fd, gsi: 7 });
    efd.write(1n);
    irqfds.irqfd({ fd: efd.fd, gsi: 7, flags: DEASSIGN });
    const afterDeassign = log.length;
    efd.write(1n);
    await flush();
    expect(log.length).toBe(afterDeassign);
    expect(efd.read()).toBe(1n); // nobody consumes it any more
  });
});

describe('irqfd level-triggered with resample (docs/SEMANTICS.md §4)', () => {
  it('§4 RESAMPLE: asserts and holds; the guest EOI de-asserts and signals every resamplefd of the GSI', async () => {
    const { irqfds, router, line } = setup([{ gsi: 10, type: 'irqchip', irqchip: IRQCHIP_IOAPIC, pin: 10 }]);
    using efd = new SoftEventFd();
    using efd2 = new SoftEventFd();
    using rfd = new SoftEventFd({ nonblock: true });
    using rfd2 = new SoftEventFd({ nonblock: true });
    irqfds.irqfd({ fd: efd.fd, gsi: 10, flags: RESAMPLE, resamplefd: rfd.fd });
    irqfds.irqfd({ fd: efd2.fd, gsi: 10, flags: RESAMPLE, resamplefd: rfd2.fd });
    efd.write(1n);
    await flush();
    expect(line('ioapic10')).toBe(true);
    await flush();
    expect(line('ioapic10')).toBe(true); // stays asserted
    router.notifyAcked(IRQCHIP_IOAPIC, 10); // guest EOI
    expect(line('ioapic10')).toBe(false);
    expect(rfd.read()).toBe(1n);
    expect(rfd2.read()).toBe(1n);
  });
  it('§4 unmask of a level pin with IRR set: the resampler is notified instead (resamplefd signalled, line kept)', async () => {
    const { irqfds, router, line } = setup([{ gsi: 13, type: 'irqchip', irqchip: IRQCHIP_IOAPIC, pin: 13 }]);
    using efd = new SoftEventFd();
    using rfd = new SoftEventFd({ nonblock: true });
    expect(router.notifyIrqfdResampler(IRQCHIP_IOAPIC, 13)).toBe(false); // no resampler yet
    irqfds.irqfd({ fd: efd.fd, gsi: 13, flags: RESAMPLE, resamplefd: rfd.fd });
    efd.write(1n);
    await flush();
    expect(router.notifyIrqfdResampler(IRQCHIP_IOAPIC, 13)).toBe(true);
    expect(rfd.read()).toBe(1n);
    expect(line('ioapic13')).toBe(true); // kvm_notify_irqfd_resampler does not de-assert
    expect(router.notifyIrqfdResampler(IRQCHIP_IOAPIC, 14)).toBe(false); // pin without a route
  });
  it('§4 the last resampling irqfd of a GSI going away de-asserts the line', async () => {
    const { irqfds, line, log } = setup([{ gsi: 11, type: 'irqchip', irqchip: IRQCHIP_IOAPIC, pin: 11 }]);
    using efd = new SoftEventFd();
    using rfd = new SoftEventFd();
    irqfds.irqfd({ fd: efd.fd, gsi: 11, flags: RESAMPLE, resamplefd: rfd.fd });
    efd.write(1n);
    await flush();
    expect(line('ioapic11')).toBe(true);
    expect(log).toContain(`ioapic11 src${IRQFD_RESAMPLE_IRQ_SOURCE_ID}=1`);
    irqfds.irqfd({ fd: efd.fd, gsi: 11, flags: DEASSIGN });
    expect(line('ioapic11')).toBe(false);
  });
  it('§6 the line is the OR of its sources: KVM_IRQ_LINE (userspace) and a resampling irqfd', async () => {
    const { irqfds, router, line } = setup([{ gsi: 12, type: 'irqchip', irqchip: IRQCHIP_IOAPIC, pin: 12 }]);
    using efd = new SoftEventFd();
    using rfd = new SoftEventFd();
    router.setIrq(USERSPACE_IRQ_SOURCE_ID, 12, true);
    irqfds.irqfd({ fd: efd.fd, gsi: 12, flags: RESAMPLE, resamplefd: rfd.fd });
    efd.write(1n);
    await flush();
    router.notifyAcked(IRQCHIP_IOAPIC, 12);
    expect(line('ioapic12')).toBe(true); // userspace still holds it
    router.setIrq(USERSPACE_IRQ_SOURCE_ID, 12, false);
    expect(line('ioapic12')).toBe(false);
  });
});

describe('GSI routing (docs/SEMANTICS.md §5)', () => {
  const router = () => new IrqRouter(recordingSink().sink);
  it('§5 flags != 0: EINVAL; nr > 4096: EINVAL; gsi >= 4096: EINVAL; unknown type: EINVAL', () => {
    const r = router();
    expect(() => r.setRouting([], 1)).toThrow(code('EINVAL'));
    const many = Array.from({ length: 4097 }, (_, i) => ({
      gsi: i % 4096,
      type: 'msi' as const,
      addressLo: 0xfee0_0000,
      addressHi: 0,
      data: i,
    }));
    expect(() => r.setRouting(many)).toThrow(code('EINVAL'));
    expect(() => r.setRouting([{ gsi: 4096, type: 'irqchip', irqchip: IRQCHIP_IOAPIC, pin: 1 }])).toThrow(
      code('EINVAL'),
    );
    r.setRouting([{ gsi: 4095, type: 'irqchip', irqchip: IRQCHIP_IOAPIC, pin: 1 }]);
    expect(() => r.setRouting([{ gsi: 1, type: 99 }])).toThrow(code('EINVAL'));
  });
  it('§5 pins: PIC 0-7 (8 EINVAL), IOAPIC 0-23 (24 EINVAL), unknown irqchip EINVAL', () => {
    const r = router();
    r.setRouting([
      { gsi: 1, type: 'irqchip', irqchip: 0, pin: 7 },
      { gsi: 2, type: 'irqchip', irqchip: 1, pin: 7 },
      { gsi: 3, type: 'irqchip', irqchip: 2, pin: 23 },
    ]);
    expect(() => r.setRouting([{ gsi: 1, type: 'irqchip', irqchip: 0, pin: 8 }])).toThrow(code('EINVAL'));
    expect(() => r.setRouting([{ gsi: 1, type: 'irqchip', irqchip: 1, pin: 8 }])).toThrow(code('EINVAL'));
    expect(() => r.setRouting([{ gsi: 1, type: 'irqchip', irqchip: 2, pin: 24 }])).toThrow(code('EINVAL'));
    expect(() => r.setRouting([{ gsi: 1, type: 'irqchip', irqchip: 3, pin: 0 }])).toThrow(code('EINVAL'));
  });
  it('§5 several irqchip entries per GSI only on different irqchips; an MSI entry alone', () => {
    const r = router();
    r.setRouting([
      { gsi: 1, type: 'irqchip', irqchip: 0, pin: 1 },
      { gsi: 1, type: 'irqchip', irqchip: 2, pin: 1 },
    ]);
    expect(() =>
      r.setRouting([
        { gsi: 1, type: 'irqchip', irqchip: 2, pin: 1 },
        { gsi: 1, type: 'irqchip', irqchip: 2, pin: 2 },
      ]),
    ).toThrow(code('EINVAL'));
    const msi = { type: 'msi' as const, addressLo: 0xfee0_0000, addressHi: 0, data: 1 };
    expect(() =>
      r.setRouting([
        { gsi: 1, ...msi },
        { gsi: 1, type: 'irqchip', irqchip: 2, pin: 2 },
      ]),
    ).toThrow(code('EINVAL'));
    expect(() =>
      r.setRouting([
        { gsi: 1, type: 'irqchip', irqchip: 2, pin: 2 },
        { gsi: 1, ...msi },
      ]),
    ).toThrow(code('EINVAL'));
    expect(() =>
      r.setRouting([
        { gsi: 1, ...msi },
        { gsi: 1, ...msi },
      ]),
    ).toThrow(code('EINVAL'));
  });
  it('§5 entry flags: MSI may carry only KVM_MSI_VALID_DEVID, irqchip none', () => {
    const r = router();
    r.setRouting([
      { gsi: 1, type: 'msi', addressLo: 0xfee0_0000, addressHi: 0, data: 1, flags: 1, devid: 7 },
    ]);
    expect(() =>
      r.setRouting([{ gsi: 1, type: 'msi', addressLo: 0, addressHi: 0, data: 1, flags: 2 }]),
    ).toThrow(code('EINVAL'));
    expect(() => r.setRouting([{ gsi: 1, type: 'irqchip', irqchip: 2, pin: 1, flags: 1 }])).toThrow(
      code('EINVAL'),
    );
  });
  it('§5 the table is replaced atomically: a rejected table leaves the old one', () => {
    const r = router();
    r.setRouting([{ gsi: 5, type: 'irqchip', irqchip: 2, pin: 5 }]);
    expect(() =>
      r.setRouting([
        { gsi: 6, type: 'irqchip', irqchip: 2, pin: 6 },
        { gsi: 7, type: 'irqchip', irqchip: 2, pin: 99 },
      ]),
    ).toThrow(code('EINVAL'));
    expect(r.table.routes(5)).toHaveLength(1);
    expect(r.table.routes(6)).toHaveLength(0);
    r.setRouting([{ gsi: 6, type: 'irqchip', irqchip: 2, pin: 6 }]);
    expect(r.table.routes(5)).toHaveLength(0);
  });
  it('§5 default x86 table: GSI 0-15 to PIC (master/slave) and IOAPIC 0-15, GSI 16-23 to IOAPIC', () => {
    const r = router();
    r.setRouting(defaultX86Routing());
    expect(r.table.routes(3)).toEqual(
      expect.arrayContaining([
        { gsi: 3, type: 'irqchip', irqchip: 0, pin: 3 },
        { gsi: 3, type: 'irqchip', irqchip: 2, pin: 3 },
      ]),
    );
    expect(r.table.routes(10)).toEqual(
      expect.arrayContaining([
        { gsi: 10, type: 'irqchip', irqchip: 1, pin: 10 },
        { gsi: 10, type: 'irqchip', irqchip: 2, pin: 10 },
      ]),
    );
    expect(r.table.routes(20)).toEqual([{ gsi: 20, type: 'irqchip', irqchip: 2, pin: 20 }]);
    expect(r.table.routes(24)).toEqual([]);
    expect(r.table.gsiOf(2, 17)).toBe(17);
  });
});
