import { describe, expect, it } from 'vitest';
import { EFD_COUNTER_MAX } from './constants.js';
import { EventFd } from './event-fd.js';
import { nativeAvailable } from './native.js';
import { SoftEventFd } from './soft-event-fd.js';
import type { EventFdState } from './state.js';
import type { EventFdLike, EventFdOptions } from './types.js';

interface Implementation {
  name: string;
  available: boolean;
  create(options?: EventFdOptions): EventFdLike;
  fromState(state: EventFdState): EventFdLike;
}

const implementations: Implementation[] = [
  {
    name: 'EventFd (kernel)',
    available: nativeAvailable,
    create: (o) => new EventFd(o),
    fromState: (s) => EventFd.fromState(s, { nonblock: true }),
  },
  {
    name: 'SoftEventFd',
    available: true,
    create: (o) => new SoftEventFd(o),
    fromState: (s) => SoftEventFd.fromState(s, { nonblock: true }),
  },
];
const viaJson = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
const drain = (e: EventFdLike) => {
  const reads: bigint[] = [];
  for (;;) {
    try {
      reads.push(e.read());
    } catch {
      return reads;
    }
  }
};

for (const impl of implementations) {
  describe.skipIf(!impl.available)(`eventfd counter as plain data: ${impl.name}`, () => {
    it('state() reads the counter without consuming it', () => {
      using e = impl.create({ nonblock: true });
      e.write(5n);
      expect(e.state()).toEqual({ version: 1, count: '5', semaphore: false });
      expect(e.state().count).toBe('5');
      expect(e.read()).toBe(5n);
      expect(e.state().count).toBe('0');
    });

    it.each([false, true])(
      'round-trips (semaphore %s): state → JSON → fromState → state is the same',
      (semaphore) => {
        using e = impl.create({ nonblock: true, semaphore });
        e.write(3n);
        const saved = viaJson(e.state());
        using restored = impl.fromState(saved);
        expect(restored.state()).toEqual(saved);
        expect(restored.semaphore).toBe(semaphore);
        // ...and it reads as the original does.
        expect(drain(restored)).toEqual(drain(e));
      },
    );

    it('a restored counter near the limit still refuses what the original refuses', () => {
      using e = impl.fromState({ version: 1, count: String(EFD_COUNTER_MAX - 1n), semaphore: false });
      expect(() => e.write(2n)).toThrow(expect.objectContaining({ code: 'EAGAIN' }));
      e.write(1n);
      expect(e.state().count).toBe(String(EFD_COUNTER_MAX));
    });

    it('restores the other implementation’s state', () => {
      for (const other of implementations.filter((i) => i.available)) {
        using e = other.create({ nonblock: true });
        e.write(7n);
        using restored = impl.fromState(viaJson(e.state()));
        expect(restored.read()).toBe(7n);
      }
    });

    it.each([
      ['not an object', 7],
      ['another version', { version: 2, count: '1', semaphore: false }],
      ['a number count', { version: 1, count: 1, semaphore: false }],
      ['a negative count', { version: 1, count: '-1', semaphore: false }],
      ['a count past 2^64-1', { version: 1, count: (1n << 64n).toString(), semaphore: false }],
      ['a hex count', { version: 1, count: '0x10', semaphore: false }],
      ['a missing semaphore flag', { version: 1, count: '1' }],
    ])('refuses %s: EINVAL', (_, state) => {
      expect(() => impl.fromState(state as EventFdState)).toThrow(
        expect.objectContaining({ code: 'EINVAL' }),
      );
    });

    it('state() of a closed eventfd: EBADF', () => {
      const e = impl.create();
      e.close();
      expect(() => e.state()).toThrow(expect.objectContaining({ code: 'EBADF' }));
    });
  });
}
