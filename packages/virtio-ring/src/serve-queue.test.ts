import { lastValueFrom, Subject, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { ChainBuffer, readSegments, writeSegments } from './chain.js';
import { VirtqueueError } from './errors.js';
import { serveQueue } from './serve-queue.js';
import { MockPackedDriver, MockSplitDriver } from './testing/index.js';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** An upper-case echo: the device every test below serves. */
function echo(drv: MockSplitDriver | MockPackedDriver) {
  return (chain: Parameters<Parameters<typeof serveQueue>[1]>[0]): number => {
    const request = new Uint8Array(chain.readableLength);
    readSegments(drv.memory, chain.readable, request);
    const reply = new TextEncoder().encode(new TextDecoder().decode(request).toUpperCase());
    return writeSegments(drv.memory, chain.writable, reply);
  };
}

describe('serveQueue: the device loop', () => {
  it('kick → chains → used entries → one interrupt per batch, as EVENT_IDX allows', () => {
    const drv = new MockSplitDriver({ size: 8, eventIdx: true });
    const kicks = new Subject<void>();
    let irqs = 0;
    const sub = kicks.pipe(serveQueue(drv.device(), echo(drv))).subscribe(() => irqs++);
    drv.driver.enableInterrupts();
    drv.add({ readable: [new TextEncoder().encode('abc')], writable: [8] });
    drv.add({ readable: [new TextEncoder().encode('xyz')], writable: [8] });
    expect(drv.needsKick()).toBe(true);
    kicks.next();
    // Synchronous completions are published before the kick returns, as one batch: one interrupt.
    expect(irqs).toBe(1);
    expect(drv.drainUsed().map((u) => new TextDecoder().decode(u.written))).toEqual(['ABC', 'XYZ']);
    drv.driver.enableInterrupts();
    drv.add({ readable: [new TextEncoder().encode('q')], writable: [8] });
    expect(drv.needsKick()).toBe(true); // the loop re-enabled kicks at avail index 2
    kicks.next();
    expect(irqs).toBe(2);
    sub.unsubscribe();
  });

  it('re-checks after re-enabling kicks: a buffer that raced in is served by the same kick', () => {
    const drv = new MockSplitDriver({ size: 8 });
    const kicks = new Subject<void>();
    let raced = false;
    let served = 0;
    kicks
      .pipe(
        serveQueue(drv.device(), () => {
          served++;
          if (!raced) {
            raced = true;
            drv.add({ writable: [1] }); // arrives while kicks are off
            expect(drv.needsKick()).toBe(false);
          }
          return 0;
        }),
      )
      .subscribe();
    drv.add({ writable: [1] });
    kicks.next();
    expect(served).toBe(2);
    expect(drv.drainUsed()).toHaveLength(2);
  });

  it('async handlers: concurrent, completed out of order, every buffer returned once', async () => {
    const drv = new MockPackedDriver({ size: 16, eventIdx: true });
    const kicks = new Subject<void>();
    let irqs = 0;
    const release = new Map<number, () => void>();
    const sub = kicks
      .pipe(
        serveQueue(drv.device(), async (chain) => {
          const n = new Uint8Array(1);
          drv.memory.read(chain.readable[0]!.addr, n);
          await new Promise<void>((r) => release.set(n[0]!, r));
          drv.memory.write(chain.writable[0]!.addr, Uint8Array.of(n[0]! * 10));
          return 1;
        }),
      )
      .subscribe(() => irqs++);
    drv.driver.enableInterrupts();
    for (let i = 0; i < 5; i++) drv.add({ readable: [Uint8Array.of(i)], writable: [1] });
    kicks.next();
    expect(release.size).toBe(5);
    const got: number[] = [];
    for (const i of [3, 1, 4, 2, 0]) {
      release.get(i)!();
      await nextTurn();
      for (const u of drv.drainUsed()) got.push(u.written[0]!);
      drv.driver.enableInterrupts();
    }
    expect(got).toEqual([30, 10, 40, 20, 0]);
    expect(irqs).toBe(5);
    expect(drv.driver.numFree).toBe(16);
    sub.unsubscribe();
  });

  it('completions settling in one turn share one used-index store and one decision', async () => {
    const drv = new MockSplitDriver({ size: 8 });
    const kicks = new Subject<void>();
    const published: number[][] = [];
    let irqs = 0;
    let releaseAll!: () => void;
    const gate = new Promise<void>((r) => {
      releaseAll = r;
    });
    kicks
      .pipe(
        serveQueue(
          drv.device(),
          async () => {
            await gate;
            return 0;
          },
          { onPublish: (heads) => published.push([...heads]) },
        ),
      )
      .subscribe(() => irqs++);
    drv.driver.enableInterrupts();
    for (let i = 0; i < 4; i++) drv.add({ writable: [1] });
    kicks.next();
    releaseAll();
    await nextTurn();
    expect(published).toHaveLength(1);
    expect(published[0]).toHaveLength(4);
    expect(irqs).toBe(1);
  });

  it('concurrency: at most N chains in flight; popping resumes as they complete', async () => {
    const drv = new MockSplitDriver({ size: 16 });
    const kicks = new Subject<void>();
    const waiting: (() => void)[] = [];
    let maxInflight = 0;
    let inflight = 0;
    kicks
      .pipe(
        serveQueue(
          drv.device(),
          async () => {
            inflight++;
            maxInflight = Math.max(maxInflight, inflight);
            await new Promise<void>((r) => waiting.push(r));
            inflight--;
            return 0;
          },
          { concurrency: 3 },
        ),
      )
      .subscribe();
    for (let i = 0; i < 10; i++) drv.add({ writable: [1] });
    kicks.next();
    expect(waiting).toHaveLength(3);
    let done = 0;
    while (done < 10) {
      const next = waiting.shift();
      expect(next).toBeDefined();
      next!();
      done++;
      await nextTurn();
    }
    expect(maxInflight).toBe(3);
    expect(drv.drainUsed()).toHaveLength(10);
  });

  it('budget: a driver that republishes as fast as it is served cannot hold the event loop', async () => {
    const drv = new MockSplitDriver({ size: 8 });
    const kicks = new Subject<void>();
    let served = 0;
    const sub = kicks
      .pipe(
        serveQueue(
          drv.device(),
          (chain) => {
            served++;
            drv.publishHead(chain.head); // a hostile guest republishes the head at once, forever
            return 0;
          },
          { budget: 20 },
        ),
      )
      .subscribe();
    drv.add({ writable: [1] });
    kicks.next();
    expect(served).toBe(20); // the kick returned after one budget
    await nextTurn();
    expect(served).toBe(40); // and the loop went on in the next turn, after other work
    sub.unsubscribe();
    await nextTurn();
    expect(served).toBe(40); // unsubscribed: nothing more
  });

  it('completing the kicks stops popping and completes after the chains in flight', async () => {
    const drv = new MockSplitDriver({ size: 8 });
    const kicks = new Subject<void>();
    const release: (() => void)[] = [];
    const done = lastValueFrom(
      kicks.pipe(
        serveQueue(drv.device(), async () => {
          await new Promise<void>((r) => release.push(r));
          return 0;
        }),
        toArray(),
      ),
    );
    drv.driver.enableInterrupts();
    drv.add({ writable: [1] });
    drv.add({ writable: [1] });
    kicks.next();
    kicks.complete();
    drv.add({ writable: [1] }); // after the stop: stays in the ring
    let finished = false;
    void done.then(() => {
      finished = true;
    });
    release[0]!();
    await nextTurn();
    expect(finished).toBe(false);
    release[1]!();
    await nextTurn();
    expect(finished).toBe(true);
    expect(release).toHaveLength(2);
    expect(drv.drainUsed()).toHaveLength(2); // both published before completion
  });

  it('unsubscribing abandons late completions: guest memory is not touched', async () => {
    const drv = new MockSplitDriver({ size: 8 });
    const kicks = new Subject<void>();
    let release!: () => void;
    const sub = kicks
      .pipe(
        serveQueue(drv.device(), async () => {
          await new Promise<void>((r) => {
            release = r;
          });
          return 0;
        }),
      )
      .subscribe();
    drv.add({ writable: [1] });
    kicks.next();
    sub.unsubscribe();
    release();
    await nextTurn();
    expect(drv.drainUsed()).toHaveLength(0);
  });

  it('a hostile ring ends the stream with its VirtqueueError (device → NEEDS_RESET)', () => {
    const drv = new MockSplitDriver({ size: 8 });
    const kicks = new Subject<void>();
    const errors: unknown[] = [];
    kicks.pipe(serveQueue(drv.device(), () => 0)).subscribe({ error: (e) => errors.push(e) });
    drv.publishHead(42);
    kicks.next();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(VirtqueueError);
    expect((errors[0] as VirtqueueError).reason).toBe('head-out-of-range');
  });

  it('a handler that throws, rejects or returns a bad length ends the stream, not the process', async () => {
    for (const handler of [
      () => {
        throw new Error('device bug');
      },
      () => Promise.reject(new Error('I/O failed')),
      () => Promise.resolve(2 ** 40), // not a u32
    ]) {
      const drv = new MockSplitDriver({ size: 8 });
      const kicks = new Subject<void>();
      const errors: unknown[] = [];
      kicks.pipe(serveQueue(drv.device(), handler)).subscribe({ error: (e) => errors.push(e) });
      drv.add({ writable: [1] });
      kicks.next();
      await nextTurn();
      expect(errors).toHaveLength(1);
      expect(errors[0]).toBeInstanceOf(Error);
    }
  });

  it('onPop sees every chain before its handler; onPublish every head after its used index moved', () => {
    const drv = new MockSplitDriver({ size: 8 });
    const kicks = new Subject<void>();
    const log: string[] = [];
    const queue = drv.device();
    kicks
      .pipe(
        serveQueue(
          queue,
          (chain) => {
            log.push(`handle ${chain.head}`);
            return 0;
          },
          {
            onPop: (chain) => log.push(`pop ${chain.head}`),
            onPublish: (heads) => log.push(`published ${heads.join(',')} used=${queue.nextUsed}`),
          },
        ),
      )
      .subscribe();
    const a = drv.add({ writable: [1] });
    const b = drv.add({ writable: [1] });
    kicks.next();
    expect(log).toEqual([`pop ${a}`, `handle ${a}`, `pop ${b}`, `handle ${b}`, `published ${a},${b} used=2`]);
  });

  it('handleBuffer: every chain popped into one reused ChainBuffer and served at once, split and packed', () => {
    for (const drv of [
      new MockSplitDriver({ size: 8, eventIdx: true, indirect: true }),
      new MockPackedDriver({ size: 8, eventIdx: true, indirect: true }),
    ]) {
      const kicks = new Subject<void>();
      const seen: ChainBuffer[] = [];
      const popped: unknown[] = [];
      let irqs = 0;
      const handle = () => {
        throw new Error('handle is not called when handleBuffer is given');
      };
      kicks
        .pipe(
          serveQueue(drv.device(), handle, {
            handleBuffer: (chain) => {
              seen.push(chain);
              const request = new Uint8Array(chain.readableLength);
              chain.read(drv.memory, request);
              const reply = new TextEncoder().encode(new TextDecoder().decode(request).toUpperCase());
              return chain.write(drv.memory, reply);
            },
            onPop: (chain) => popped.push(chain),
          }),
        )
        .subscribe(() => irqs++);
      drv.driver.enableInterrupts();
      const enc = (s: string) => new TextEncoder().encode(s);
      drv.add({ readable: [enc('ab'), enc('c')], writable: [2, 8] });
      drv.add({ readable: [enc('xy')], writable: [4], indirect: true });
      kicks.next();
      expect(irqs).toBe(1);
      expect(drv.drainUsed().map((u) => new TextDecoder().decode(u.written))).toEqual(['ABC', 'XY']);
      expect(seen).toHaveLength(2);
      expect(seen[0]).toBeInstanceOf(ChainBuffer);
      expect(seen[1]).toBe(seen[0]); // one buffer, refilled by each pop
      expect(popped).toEqual(seen);
    }
  });

  it('handleBuffer: a hostile ring or a throwing handler ends the stream with its error', () => {
    const hostile = new MockSplitDriver({ size: 8 });
    const errors: unknown[] = [];
    const kicks = new Subject<void>();
    kicks
      .pipe(serveQueue(hostile.device(), () => 0, { handleBuffer: () => 0 }))
      .subscribe({ error: (e) => errors.push(e) });
    hostile.publishHead(42);
    kicks.next();
    expect((errors[0] as VirtqueueError).reason).toBe('head-out-of-range');

    const drv = new MockSplitDriver({ size: 8 });
    const more = new Subject<void>();
    more
      .pipe(
        serveQueue(drv.device(), () => 0, {
          handleBuffer: () => {
            throw new Error('device failed');
          },
        }),
      )
      .subscribe({ error: (e) => errors.push(e) });
    drv.add({ writable: [1] });
    more.next();
    expect((errors[1] as Error).message).toBe('device failed');
    const bad = new MockSplitDriver({ size: 8 });
    const last = new Subject<void>();
    last
      .pipe(serveQueue(bad.device(), () => 0, { handleBuffer: () => -1 }))
      .subscribe({ error: (e) => errors.push(e) });
    bad.add({ writable: [1] });
    last.next();
    expect((errors[2] as VirtqueueError).reason).toBe('bad-used-len');
  });

  it('refuses a concurrency or budget below 1', () => {
    const drv = new MockSplitDriver({ size: 8 });
    expect(() => serveQueue(drv.device(), () => 0, { budget: 0 })).toThrow(RangeError);
    expect(() => serveQueue(drv.device(), () => 0, { concurrency: Number.NaN })).toThrow(RangeError);
  });
});
