// Differential testing: random operation sequences run on a kernel EventFd and an
// SoftEventFd side by side; every result and every error (errno name or
// TypeError) must be identical. The kernel is the oracle: a difference is a bug
// in SoftEventFd.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EFD_COUNTER_MAX, U64_MAX } from './constants.js';
import { EventFd } from './event-fd.js';
import { SoftEventFd } from './soft-event-fd.js';
import { nativeAvailable } from './native.js';
import type { EventFdLike, EventFdOptions } from './types.js';

if (!nativeAvailable)
  console.warn('differential: @rxvmm/sys did not load; kernel EventFd unavailable, skipped');

type Op =
  | { kind: 'read' }
  | { kind: 'write'; value: unknown }
  | { kind: 'readAsync'; thenWrite: bigint } // if it must wait, a write of thenWrite wakes it
  | { kind: 'writeAsync'; value: bigint } // if it must wait, a read makes room
  | { kind: 'close' };

// Small values and values at the top of the range, so that sums hit the limits exactly.
const value = fc.oneof(
  { weight: 4, arbitrary: fc.bigInt({ min: 0n, max: 4n }) },
  { weight: 4, arbitrary: fc.bigInt({ min: EFD_COUNTER_MAX - 4n, max: U64_MAX + 1n }) },
  { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: U64_MAX }) },
  { weight: 1, arbitrary: fc.bigInt({ min: -2n, max: -1n }) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(1, '1', undefined, null, 1.5) },
);

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<Op>({ kind: 'read' }) },
  { weight: 6, arbitrary: value.map<Op>((v) => ({ kind: 'write', value: v })) },
  {
    weight: 2,
    arbitrary: fc
      .bigInt({ min: 1n, max: EFD_COUNTER_MAX })
      .map<Op>((v) => ({ kind: 'readAsync', thenWrite: v })),
  },
  {
    weight: 2,
    arbitrary: fc
      .bigInt({ min: 0n, max: EFD_COUNTER_MAX })
      .map<Op>((v) => ({ kind: 'writeAsync', value: v })),
  },
  { weight: 1, arbitrary: fc.constant<Op>({ kind: 'close' }) },
);

const options: fc.Arbitrary<EventFdOptions> = fc.record(
  {
    initval: fc.oneof(
      fc.integer({ min: 0, max: 3 }),
      fc.constantFrom<number | bigint>(0xffff_ffff, 2 ** 32, -1, 0.5, 5n, -1n, 1n << 40n),
    ),
    semaphore: fc.boolean(),
    nonblock: fc.constant(true),
  },
  { requiredKeys: ['nonblock'] },
);

function outcome(call: () => unknown): unknown {
  try {
    return { ok: call() };
  } catch (error) {
    return error instanceof TypeError ? { error: 'TypeError' } : { error: (error as { code?: string }).code };
  }
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

async function settle(promise: Promise<unknown>): Promise<unknown> {
  try {
    return { ok: await promise };
  } catch (error) {
    return error instanceof TypeError ? { error: 'TypeError' } : { error: (error as { code?: string }).code };
  }
}

/** Runs one op; returns a comparable trace entry. Async ops are driven to completion deterministically. */
async function run(efd: EventFdLike, step: Op): Promise<unknown> {
  switch (step.kind) {
    case 'read':
      return outcome(() => efd.read());
    case 'write':
      return outcome(() => efd.write(step.value as bigint));
    case 'close':
      return outcome(() => efd.close());
    case 'readAsync': {
      let done = false;
      const promise = efd.readAsync().finally(() => {
        done = true;
      });
      await Promise.resolve();
      await Promise.resolve();
      const waited = !done;
      const wake = waited ? outcome(() => efd.write(step.thenWrite)) : undefined;
      return { waited, wake, result: await settle(promise) };
    }
    case 'writeAsync': {
      let done = false;
      const promise = efd.writeAsync(step.value).finally(() => {
        done = true;
      });
      await Promise.resolve();
      await Promise.resolve();
      const waited = !done;
      if (!waited) return { waited, result: await settle(promise) };
      // Make room with one read. Whether the write then fits is decided by the counter alone;
      // a write that still cannot complete is ended by close (EBADF) after a few loop turns.
      const room = outcome(() => efd.read());
      for (let turn = 0; turn < 20 && !done; turn++) await nextTurn();
      const closedIt = !done;
      if (closedIt) efd.close();
      return { waited, room, closedIt, result: await settle(promise) };
    }
  }
}

describe.skipIf(!nativeAvailable)('differential: EventFd (kernel) vs SoftEventFd', () => {
  it('random operation sequences give identical results and errnos', async () => {
    await fc.assert(
      fc.asyncProperty(options, fc.array(op, { maxLength: 25 }), async (opts, ops) => {
        const kernel = outcome(() => new EventFd(opts)) as { ok?: EventFd; error?: string };
        const memory = outcome(() => new SoftEventFd(opts)) as { ok?: SoftEventFd; error?: string };
        expect(memory.error).toEqual(kernel.error);
        if (kernel.ok === undefined || memory.ok === undefined) return;
        try {
          for (const step of ops) {
            const expected = await run(kernel.ok, step);
            const actual = await run(memory.ok, step);
            expect({ step, result: actual }).toEqual({ step, result: expected });
          }
          // The final counter must agree too.
          expect(outcome(() => memory.ok?.read())).toEqual(outcome(() => kernel.ok?.read()));
          expect(memory.ok.closed).toBe(kernel.ok.closed);
        } finally {
          kernel.ok.close();
          memory.ok.close();
        }
      }),
      { numRuns: 500 },
    );
  });
});
