// ONE conformance suite for eventfd semantics (fs/eventfd.c), run against the
// kernel (EventFd) and against SoftEventFd. The kernel is the oracle: a
// vector that passes on EventFd and fails on SoftEventFd is a bug in the
// latter. Fixed vectors first, then fast-check properties checked against a
// small independent model of the counter.
import fc from 'fast-check';
import { firstValueFrom, take, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { EFD_COUNTER_MAX, U64_MAX } from './constants.js';
import { EventFd } from './event-fd.js';
import { SoftEventFd } from './soft-event-fd.js';
import { nativeAvailable } from './native.js';
import type { EventFdLike, EventFdOptions } from './types.js';

interface Implementation {
  name: string;
  available: boolean;
  create(options?: EventFdOptions): EventFdLike;
}

const implementations: Implementation[] = [
  { name: 'EventFd (kernel)', available: nativeAvailable, create: (o) => new EventFd(o) },
  { name: 'SoftEventFd', available: true, create: (o) => new SoftEventFd(o) },
];
if (!nativeAvailable) console.warn('conformance: @rxvmm/sys did not load; the kernel half is skipped');

const code = (c: string) => expect.objectContaining({ code: c });
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The outcome of a call, comparable across implementations. */
function outcome(call: () => unknown): unknown {
  try {
    return { ok: call() };
  } catch (error) {
    if (error instanceof TypeError) return { error: 'TypeError' };
    return { error: (error as { code?: string }).code ?? String(error) };
  }
}

for (const impl of implementations) {
  describe.skipIf(!impl.available)(`eventfd conformance: ${impl.name}`, () => {
    const open = (options?: EventFdOptions) => impl.create(options);

    describe('creation', () => {
      it('starts at initval (number or bigint), up to 2^32-1', () => {
        for (const initval of [1, 7n, 0xffff_ffff, 0xffff_ffffn]) {
          const efd = open({ initval, nonblock: true });
          expect(efd.read()).toBe(BigInt(initval));
          efd.close();
        }
        const zero = open({ nonblock: true });
        expect(() => zero.read()).toThrow(code('EAGAIN'));
        zero.close();
      });

      it('exposes fd, flags and closed', () => {
        const efd = open({ semaphore: true, nonblock: true });
        expect(Number.isInteger(efd.fd) && efd.fd >= 0).toBe(true);
        expect(efd.semaphore).toBe(true);
        expect(efd.nonblock).toBe(true);
        expect(efd.closed).toBe(false);
        efd.close();
        expect(efd.closed).toBe(true);
      });

      it('rejects unrepresentable initvals with EINVAL and wrong types with TypeError', () => {
        for (const initval of [-1, 2 ** 32, 1.5, Number.NaN, Number.POSITIVE_INFINITY, -1n, 1n << 32n]) {
          expect(() => open({ initval })).toThrow(code('EINVAL'));
        }
        expect(() => open({ initval: '1' as unknown as number })).toThrow(TypeError);
        expect(() => open(null as unknown as EventFdOptions)).toThrow(TypeError);
        expect(() => open({ semaphore: 1 as unknown as boolean })).toThrow(TypeError);
        expect(() => open({ nonblock: 'yes' as unknown as boolean })).toThrow(TypeError);
      });
    });

    describe('read and write', () => {
      it('write adds, read returns the sum and zeroes the counter', () => {
        const efd = open({ nonblock: true });
        efd.write(1n);
        efd.write(2n);
        efd.write(39n);
        expect(efd.read()).toBe(42n);
        expect(() => efd.read()).toThrow(code('EAGAIN'));
        efd.close();
      });

      it('the counter maximum is 0xfffffffffffffffe; passing it is EAGAIN; 0 is always writable', () => {
        const efd = open({ nonblock: true });
        efd.write(EFD_COUNTER_MAX);
        expect(() => efd.write(1n)).toThrow(code('EAGAIN'));
        efd.write(0n);
        expect(efd.read()).toBe(EFD_COUNTER_MAX);
        const one = open({ initval: 1, nonblock: true });
        expect(() => one.write(EFD_COUNTER_MAX)).toThrow(code('EAGAIN'));
        one.write(EFD_COUNTER_MAX - 1n);
        expect(one.read()).toBe(EFD_COUNTER_MAX);
        efd.close();
        one.close();
      });

      it('writing 0xffffffffffffffff is EINVAL, even on an empty counter', () => {
        const efd = open({ nonblock: true });
        expect(() => efd.write(U64_MAX)).toThrow(code('EINVAL'));
        expect(() => efd.read()).toThrow(code('EAGAIN'));
        efd.close();
      });

      it('unrepresentable values are EINVAL, non-bigints are TypeError', () => {
        const efd = open({ nonblock: true });
        expect(() => efd.write(-1n)).toThrow(code('EINVAL'));
        expect(() => efd.write(1n << 64n)).toThrow(code('EINVAL'));
        expect(() => efd.write(1 as unknown as bigint)).toThrow(TypeError);
        expect(() => efd.write(undefined as unknown as bigint)).toThrow(TypeError);
        efd.close();
      });

      it('writing 0 to an empty counter succeeds and leaves it empty', () => {
        const efd = open({ nonblock: true });
        efd.write(0n);
        expect(() => efd.read()).toThrow(code('EAGAIN'));
        efd.close();
      });

      it('semaphore mode: a read returns 1 and decrements', () => {
        const efd = open({ initval: 3, semaphore: true, nonblock: true });
        efd.write(2n);
        const reads = [efd.read(), efd.read(), efd.read(), efd.read(), efd.read()];
        expect(reads).toEqual([1n, 1n, 1n, 1n, 1n]);
        expect(() => efd.read()).toThrow(code('EAGAIN'));
        efd.close();
      });

      it('blocking (nonblock: false) sync calls that can complete behave like non-blocking ones', () => {
        const efd = open({ initval: 5 });
        efd.write(EFD_COUNTER_MAX - 5n);
        expect(efd.read()).toBe(EFD_COUNTER_MAX);
        expect(() => efd.write(U64_MAX)).toThrow(code('EINVAL'));
        efd.close();
      });
    });

    describe('close', () => {
      it('every use after close is EBADF; close itself is idempotent', async () => {
        const efd = open({ nonblock: true });
        efd.close();
        efd.close();
        efd[Symbol.dispose]();
        expect(() => efd.read()).toThrow(code('EBADF'));
        expect(() => efd.write(1n)).toThrow(code('EBADF'));
        await expect(efd.readAsync()).rejects.toMatchObject({ code: 'EBADF' });
        await expect(efd.writeAsync(1n)).rejects.toMatchObject({ code: 'EBADF' });
      });

      it('argument checks come in the order TypeError, EBADF, EINVAL', () => {
        const efd = open({ nonblock: true });
        efd.close();
        expect(() => efd.write('1' as unknown as bigint)).toThrow(TypeError);
        expect(() => efd.write(-1n)).toThrow(code('EBADF'));
        expect(() => efd.write(U64_MAX)).toThrow(code('EBADF'));
      });

      it('pending async calls reject with EBADF on close', async () => {
        const efd = open();
        const read = efd.readAsync();
        const full = open({ initval: 1 });
        const write = full.writeAsync(EFD_COUNTER_MAX);
        await nextTurn();
        efd.close();
        full.close();
        await expect(read).rejects.toMatchObject({ code: 'EBADF' });
        await expect(write).rejects.toMatchObject({ code: 'EBADF' });
      });
    });

    describe('async API (blocking semantics without blocking the loop)', () => {
      it('readAsync returns at once when the counter is > 0', async () => {
        const efd = open({ initval: 9, nonblock: true });
        await expect(efd.readAsync()).resolves.toBe(9n);
        efd.close();
      });

      it('readAsync waits for a write, made later on the loop', async () => {
        for (const nonblock of [true, false]) {
          const efd = open({ nonblock });
          let resolved = false;
          const read = efd.readAsync().then((value) => {
            resolved = true;
            return value;
          });
          await nextTurn();
          expect(resolved).toBe(false);
          setImmediate(() => efd.write(3n));
          await expect(read).resolves.toBe(3n);
          efd.close();
        }
      });

      it('writeAsync waits while the write would pass the maximum, then completes', async () => {
        const efd = open({ nonblock: true });
        efd.write(EFD_COUNTER_MAX);
        let done = false;
        const write = efd.writeAsync(5n).then(() => {
          done = true;
        });
        await nextTurn();
        expect(done).toBe(false);
        expect(efd.read()).toBe(EFD_COUNTER_MAX);
        await write;
        expect(efd.read()).toBe(5n);
        efd.close();
      });

      it('writeAsync rejects what write rejects: EINVAL, TypeError', async () => {
        const efd = open({ nonblock: true });
        await expect(efd.writeAsync(U64_MAX)).rejects.toMatchObject({ code: 'EINVAL' });
        await expect(efd.writeAsync(-2n)).rejects.toMatchObject({ code: 'EINVAL' });
        await expect(efd.writeAsync(2 as unknown as bigint)).rejects.toThrow(TypeError);
        efd.close();
      });

      it('concurrent readAsync calls are served in order, one read each', async () => {
        const efd = open({ semaphore: true });
        const reads = [efd.readAsync(), efd.readAsync(), efd.readAsync()];
        efd.write(3n);
        await expect(Promise.all(reads)).resolves.toEqual([1n, 1n, 1n]);
        efd.close();
      });
    });

    describe('signals$', () => {
      it('emits coalesced counter values, consuming them', async () => {
        const efd = open({ nonblock: true });
        const first = firstValueFrom(efd.signals$);
        efd.write(2n);
        efd.write(3n);
        expect(await first).toBe(5n);
        expect(() => efd.read()).toThrow(code('EAGAIN'));
        efd.close();
      });

      it('emits a value already pending at subscription', async () => {
        const efd = open({ initval: 4 });
        expect(await firstValueFrom(efd.signals$)).toBe(4n);
        efd.close();
      });

      it('completes on close, and at once when subscribed after close', async () => {
        const efd = open();
        const seen: bigint[] = [];
        const completed = new Promise<void>((resolve) =>
          efd.signals$.subscribe({ next: (v) => seen.push(v), complete: resolve }),
        );
        efd.write(1n);
        while (seen.length === 0) await nextTurn();
        efd.close();
        await completed;
        expect(seen).toEqual([1n]);
        await expect(firstValueFrom(efd.signals$.pipe(toArray()))).resolves.toEqual([]);
      });

      it('is shared: every subscriber sees each consumed value', async () => {
        const efd = open();
        const a = firstValueFrom(efd.signals$.pipe(take(2), toArray()));
        const b = firstValueFrom(efd.signals$.pipe(take(1), toArray()));
        efd.write(7n);
        expect(await b).toEqual([7n]);
        efd.write(8n);
        expect(await a).toEqual([7n, 8n]);
        efd.close();
      });

      it('in semaphore mode emits 1 per unit of the counter', async () => {
        const efd = open({ semaphore: true, nonblock: true });
        const ones = firstValueFrom(efd.signals$.pipe(take(4), toArray()));
        efd.write(4n);
        expect(await ones).toEqual([1n, 1n, 1n, 1n]);
        expect(() => efd.read()).toThrow(code('EAGAIN'));
        efd.close();
      });

      it('stops consuming when nobody subscribes', async () => {
        const efd = open({ nonblock: true });
        const sub = efd.signals$.subscribe();
        sub.unsubscribe();
        efd.write(6n);
        await nextTurn();
        await nextTurn();
        expect(efd.read()).toBe(6n);
        efd.close();
      });
    });

    describe('properties', () => {
      const u64 = fc.bigInt({ min: 0n, max: U64_MAX });
      const interesting = fc.oneof(
        fc.bigInt({ min: 0n, max: 1000n }),
        fc.bigInt({ min: EFD_COUNTER_MAX - 1000n, max: U64_MAX }),
        u64,
      );

      it('any sequence of non-blocking writes and reads matches the counter model', () => {
        fc.assert(
          fc.property(
            fc.array(fc.option(interesting, { nil: undefined, freq: 4 }), { maxLength: 30 }),
            fc.boolean(),
            (ops, semaphore) => {
              const efd = open({ nonblock: true, semaphore });
              let model = 0n;
              try {
                for (const op of ops) {
                  if (op === undefined) {
                    const expected = model === 0n ? { error: 'EAGAIN' } : { ok: semaphore ? 1n : model };
                    if (model > 0n) model -= semaphore ? 1n : model;
                    expect(outcome(() => efd.read())).toEqual(expected);
                  } else {
                    let expected: unknown = { ok: undefined };
                    if (op === U64_MAX) expected = { error: 'EINVAL' };
                    else if (model + op > EFD_COUNTER_MAX) expected = { error: 'EAGAIN' };
                    else model += op;
                    expect(outcome(() => efd.write(op))).toEqual(expected);
                  }
                }
              } finally {
                efd.close();
              }
            },
          ),
          { numRuns: 200 },
        );
      });

      it('any writable value reads back unchanged', () => {
        fc.assert(
          fc.property(fc.bigInt({ min: 1n, max: EFD_COUNTER_MAX }), (value) => {
            const efd = open({ nonblock: true });
            efd.write(value);
            const read = efd.read();
            efd.close();
            return read === value;
          }),
          { numRuns: 300 },
        );
      });

      it('semaphore mode yields exactly initval reads of 1', () => {
        fc.assert(
          fc.property(fc.integer({ min: 0, max: 40 }), (initval) => {
            const efd = open({ initval, semaphore: true, nonblock: true });
            let reads = 0;
            while (Object.hasOwn(outcome(() => efd.read()) as object, 'ok')) reads++;
            efd.close();
            return reads === initval;
          }),
        );
      });

      it('arbitrary JavaScript values as write arguments: TypeError unless bigint, EINVAL unless u64', () => {
        fc.assert(
          fc.property(fc.anything(), fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }), (junk, big) => {
            const efd = open({ nonblock: true });
            try {
              const junkOutcome = outcome(() => efd.write(junk as bigint));
              if (typeof junk !== 'bigint') expect(junkOutcome).toEqual({ error: 'TypeError' });
              const bigOutcome = outcome(() => efd.write(big));
              if (big < 0n || big >= U64_MAX) expect(bigOutcome).toEqual({ error: 'EINVAL' });
            } finally {
              efd.close();
            }
          }),
          { numRuns: 200 },
        );
      });

      it('initval: integers 0..2^32-1 accepted, other numbers EINVAL', () => {
        fc.assert(
          fc.property(fc.oneof(fc.double(), fc.integer({ min: -(2 ** 33), max: 2 ** 33 })), (initval) => {
            const valid = Number.isInteger(initval) && initval >= 0 && initval <= 0xffff_ffff;
            const result = outcome(() => open({ initval, nonblock: true }));
            if (valid) {
              expect(result).toHaveProperty('ok');
              const efd = (result as { ok: EventFdLike }).ok;
              expect(outcome(() => efd.read())).toEqual(
                initval === 0 ? { error: 'EAGAIN' } : { ok: BigInt(initval) },
              );
              efd.close();
            } else {
              expect(result).toEqual({ error: 'EINVAL' });
            }
          }),
          { numRuns: 200 },
        );
      });
    });
  });
}
