import { filter, lastValueFrom, map, Subject, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { VirtqueueError } from './errors.js';
import { type Completion, chainsOnKick, drainOnKick, interrupts, notifyDecisions, serveQueue } from './rx.js';
import { MockPackedDriver, MockSplitDriver } from './testing/index.js';

describe('RxJS: kicks → chains, completions → notify decisions', () => {
  it('a device as a pipeline: kick$ → chains → completions → interrupts', () => {
    const drv = new MockSplitDriver({ size: 8, eventIdx: true });
    const q = drv.device();
    const kicks = new Subject<bigint>();
    const irqs: number[] = [];
    let irqCount = 0;
    const sub = kicks
      .pipe(
        chainsOnKick(q),
        map((chain): Completion => {
          // Echo device: copy the request, upper-cased, into the writable buffer.
          const req = new Uint8Array(chain.readableLength);
          let o = 0;
          for (const s of chain.readable) {
            drv.memory.read(s.addr, req.subarray(o, o + s.len));
            o += s.len;
          }
          const out = new TextEncoder().encode(new TextDecoder().decode(req).toUpperCase());
          drv.memory.write(chain.writable[0]!.addr, out);
          return { head: chain.head, len: out.byteLength };
        }),
        interrupts(q),
      )
      .subscribe(() => irqs.push(++irqCount));
    drv.driver.enableInterrupts();
    drv.add({ readable: [new TextEncoder().encode('abc')], writable: [8] });
    drv.add({ readable: [new TextEncoder().encode('xyz')], writable: [8] });
    expect(drv.needsKick()).toBe(true); // avail_event starts at 0
    kicks.next(1n);
    // Only the first completion crossed used_event (0): one interrupt for two buffers.
    expect(irqs).toEqual([1]);
    expect(drv.drainUsed().map((u) => new TextDecoder().decode(u.written))).toEqual(['ABC', 'XYZ']);
    // The device re-enabled kicks at avail index 2, so the next buffer needs one.
    drv.driver.enableInterrupts();
    drv.add({ readable: [new TextEncoder().encode('q')], writable: [8] });
    expect(drv.needsKick()).toBe(true);
    kicks.next(1n);
    expect(irqs).toEqual([1, 2]);
    sub.unsubscribe();
  });

  it('notifyDecisions emits one decision per completion or batch', async () => {
    const drv = new MockPackedDriver({ size: 4 });
    const q = drv.device();
    for (let i = 0; i < 3; i++) drv.add({ writable: [1] });
    const chains = [q.pop()!, q.pop()!, q.pop()!];
    const done = new Subject<Completion | Completion[]>();
    const decisions = lastValueFrom(done.pipe(notifyDecisions(q), toArray()));
    done.next({ head: chains[0]!.head, len: 1 });
    drv.driver.disableInterrupts();
    done.next([
      { head: chains[1]!.head, len: 1 },
      { head: chains[2]!.head, len: 1 },
    ]);
    done.complete();
    expect(await decisions).toEqual([true, false]);
    expect(drv.drainUsed()).toHaveLength(3);
  });

  it('drainOnKick re-checks after re-enabling notifications (no lost buffers)', () => {
    const drv = new MockSplitDriver({ size: 8 });
    const q = drv.device();
    const kicks = new Subject<void>();
    const counts: number[] = [];
    let raced = false;
    kicks
      .pipe(
        drainOnKick(q, (chain) => {
          q.pushUsed(chain.head, 0);
          // A buffer arriving while the device is draining (notifications are off).
          if (!raced) {
            raced = true;
            drv.add({ writable: [1] });
            expect(drv.needsKick()).toBe(false);
          }
        }),
      )
      .subscribe((n) => counts.push(n));
    drv.add({ writable: [1] });
    drv.needsKick();
    kicks.next();
    expect(counts).toEqual([2]);
    expect(drv.drainUsed()).toHaveLength(2);
  });

  it('a hostile ring errors the stream with the VirtqueueError (device → NEEDS_RESET)', () => {
    const drv = new MockSplitDriver({ size: 8 });
    const q = drv.device();
    const kicks = new Subject<void>();
    const seen: unknown[] = [];
    kicks
      .pipe(chainsOnKick(q), filter(Boolean))
      .subscribe({ next: (c) => seen.push(c), error: (e) => seen.push(e) });
    drv.publishHead(42);
    kicks.next();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeInstanceOf(VirtqueueError);
    expect((seen[0] as VirtqueueError).reason).toBe('head-out-of-range');
  });

  it('serveQueue: async handlers, completions out of order, every buffer returned once', async () => {
    const drv = new MockPackedDriver({ size: 16, eventIdx: true });
    const q = drv.device();
    const kicks = new Subject<void>();
    let irq = 0;
    // Each request waits until the test releases it, in an order of the test's choosing.
    const release = new Map<number, () => void>();
    const sub = kicks
      .pipe(
        serveQueue(q, async (chain) => {
          const n = new Uint8Array(1);
          drv.memory.read(chain.readable[0]!.addr, n);
          await new Promise<void>((r) => release.set(n[0]!, r));
          drv.memory.write(chain.writable[0]!.addr, Uint8Array.of(n[0]! * 10));
          return 1;
        }),
      )
      .subscribe(() => irq++);
    drv.driver.enableInterrupts();
    for (let i = 0; i < 5; i++) drv.add({ readable: [Uint8Array.of(i)], writable: [1] });
    kicks.next();
    expect(release.size).toBe(5); // all five in flight at once
    const got: number[] = [];
    for (const i of [3, 1, 4, 2, 0]) {
      release.get(i)!();
      await new Promise((r) => setImmediate(r));
      for (const u of drv.drainUsed()) got.push(u.written[0]!);
      drv.driver.enableInterrupts();
    }
    expect(got).toEqual([30, 10, 40, 20, 0]);
    expect(irq).toBe(5); // the driver re-armed used_event after each one
    expect(drv.driver.numFree).toBe(16);
    sub.unsubscribe();
  });
});
