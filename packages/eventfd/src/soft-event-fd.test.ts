// SoftEventFd's own surface: the synthetic fd registry and the kernel-side
// API (signal / drain / watch) that SoftKvm's ioeventfd and irqfd use. The
// user-side semantics are covered by the conformance suite, against the kernel.

import { firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { IN_MEMORY_FD_BASE, U64_MAX } from './constants.js';
import { SoftEventFd } from './soft-event-fd.js';

describe('SoftEventFd registry', () => {
  it('hands out distinct synthetic fds >= 0x40000000 and finds open ones', () => {
    const a = new SoftEventFd();
    const b = new SoftEventFd();
    expect(a.fd).toBeGreaterThanOrEqual(IN_MEMORY_FD_BASE);
    expect(b.fd).not.toBe(a.fd);
    expect(SoftEventFd.fromFd(a.fd)).toBe(a);
    a.close();
    expect(SoftEventFd.fromFd(a.fd)).toBeUndefined();
    expect(SoftEventFd.fromFd(b.fd)).toBe(b);
    expect(SoftEventFd.fromFd(3)).toBeUndefined();
    b.close();
  });
});

describe('SoftEventFd kernel-side API', () => {
  it('signal adds 1 by default, n when given, and saturates at 2^64-1', () => {
    const efd = new SoftEventFd({ nonblock: true });
    efd.signal();
    efd.signal(4n);
    expect(efd.read()).toBe(5n);
    efd.write(0xffff_ffff_ffff_fffen);
    efd.signal(10n);
    expect(efd.read()).toBe(U64_MAX);
    efd.close();
  });

  it('a saturated counter refuses every write, even 0, like the kernel', () => {
    const efd = new SoftEventFd({ nonblock: true });
    efd.signal(U64_MAX);
    expect(() => efd.write(0n)).toThrow(expect.objectContaining({ code: 'EAGAIN' }));
    expect(efd.drain()).toBe(U64_MAX);
    efd.write(0n);
    efd.close();
  });

  it('drain takes the whole counter, 0n when empty; 1 at a time in semaphore mode', () => {
    const efd = new SoftEventFd({ initval: 3 });
    expect(efd.drain()).toBe(3n);
    expect(efd.drain()).toBe(0n);
    const sem = new SoftEventFd({ initval: 2, semaphore: true });
    expect(sem.drain()).toBe(1n);
    expect(sem.drain()).toBe(1n);
    expect(sem.drain()).toBe(0n);
    efd.close();
    sem.close();
    expect(efd.drain()).toBe(0n);
  });

  it('watch: readable runs synchronously after a write/signal leaving the counter > 0', () => {
    const efd = new SoftEventFd();
    const seen: string[] = [];
    const unwatch = efd.watch({ readable: () => seen.push(`readable ${efd.drain()}`) });
    efd.write(0n); // counter stays 0: no wake-up
    efd.write(2n);
    efd.signal();
    expect(seen).toEqual(['readable 2', 'readable 1']);
    unwatch();
    unwatch();
    efd.signal();
    expect(seen).toHaveLength(2);
    efd.close();
  });

  it('watch: hangup once on close; watch after close is EBADF; signal after close is a no-op', () => {
    const efd = new SoftEventFd();
    let hangups = 0;
    efd.watch({ hangup: () => hangups++ });
    efd.close();
    efd.close();
    expect(hangups).toBe(1);
    expect(() => efd.watch({})).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(() => efd.signal()).not.toThrow();
  });

  it('a throwing watcher does not fail the write that woke it', async () => {
    const efd = new SoftEventFd();
    const errors: unknown[] = [];
    const onError = (error: unknown) => errors.push(error);
    process.prependListener('uncaughtException', onError);
    try {
      efd.watch({
        readable: () => {
          throw new Error('watcher bug');
        },
      });
      let other = 0;
      efd.watch({ readable: () => other++ });
      expect(() => efd.signal()).not.toThrow();
      expect(other).toBe(1);
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.removeListener('uncaughtException', onError);
      efd.close();
    }
    expect(errors).toHaveLength(1);
  });

  it('signals$ sees what signal() adds, coalesced within one synchronous run', async () => {
    const efd = new SoftEventFd();
    const first = firstValueFrom(efd.signals$);
    efd.signal();
    efd.signal();
    efd.signal();
    expect(await first).toBe(3n);
    efd.close();
  });
});
