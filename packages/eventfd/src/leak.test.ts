// No leaks: 10,000 EventFds created and closed, with and without an active
// signals$ subscription (and with a pending readAsync), leave the process's open
// fd count unchanged; so do SoftEventFds for their registry.
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EventFd } from './event-fd.js';
import { SoftEventFd } from './soft-event-fd.js';
import { nativeAvailable } from './native.js';

const N = 10_000;
const openFds = () => readdirSync('/proc/self/fd').length;
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe.skipIf(!nativeAvailable)('EventFd leaks', () => {
  it(`create/close ${N} EventFds leaves /proc/self/fd unchanged`, async () => {
    await nextTurn();
    const before = openFds();
    for (let i = 0; i < N; i++) {
      const efd = new EventFd({ initval: i & 0xff });
      efd.close();
    }
    await nextTurn();
    expect(openFds()).toBe(before);
  });

  it(`create/subscribe/close ${N} EventFds (active signals$ poller) leaves /proc/self/fd unchanged`, async () => {
    await nextTurn();
    const before = openFds();
    let completed = 0;
    let emitted = 0;
    let rejected = 0;
    for (let i = 0; i < N; i++) {
      const efd = new EventFd();
      efd.signals$.subscribe({ next: () => emitted++, complete: () => completed++ });
      if (i % 2 === 0) efd.write(1n); // some are readable when closed
      const pending = i % 3 === 0 ? efd.readAsync() : undefined; // some have a pending async read too
      efd.close();
      if (pending !== undefined)
        rejected += await pending.then(
          () => 0,
          (e: { code?: string }) => (e.code === 'EBADF' ? 1 : 0),
        );
      if (i % 1000 === 0) await nextTurn(); // let libuv run close callbacks along the way
    }
    await nextTurn();
    expect(completed).toBe(N);
    expect(emitted).toBe(0); // closed before the loop could deliver anything
    expect(rejected).toBe(Math.ceil(N / 6)); // pending reads (i % 3 === 0 and the counter empty) fail with EBADF
    expect(openFds()).toBe(before);
  });

  it(`${N} EventFds each delivering one signal, then closed, leave /proc/self/fd unchanged`, async () => {
    await nextTurn();
    const before = openFds();
    let received = 0;
    for (let batch = 0; batch < N / 500; batch++) {
      const efds = Array.from({ length: 500 }, () => new EventFd());
      const subscriptions = efds.map((efd) => efd.signals$.subscribe(() => received++));
      for (const efd of efds) efd.write(1n);
      while (received < (batch + 1) * 500) await nextTurn();
      for (const s of subscriptions) s.unsubscribe();
      for (const efd of efds) efd.close();
    }
    expect(received).toBe(N);
    expect(openFds()).toBe(before);
  });
});

describe('SoftEventFd leaks', () => {
  it(`create/subscribe/close ${N} leaves no registry entries behind`, () => {
    const first = new SoftEventFd();
    for (let i = 0; i < N; i++) {
      const efd = new SoftEventFd();
      efd.signals$.subscribe();
      efd.watch({});
      efd.close();
      expect(SoftEventFd.fromFd(efd.fd)).toBeUndefined();
    }
    expect(SoftEventFd.fromFd(first.fd)).toBe(first);
    first.close();
  });
});
