import { firstValueFrom, from, take, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { EventFd } from './event-fd.js';
import { SoftEventFd } from './soft-event-fd.js';
import { nativeAvailable } from './native.js';
import { eventFdWriter, perSignal, signalEach } from './operators.js';
import type { EventFdLike } from './types.js';

const makers: [string, () => EventFdLike][] = [
  ['SoftEventFd', () => new SoftEventFd({ nonblock: true })],
];
if (nativeAvailable) makers.push(['EventFd', () => new EventFd({ nonblock: true })]);

describe.each(makers)('RxJS helpers on %s', (_name, make) => {
  it('signalEach writes 1n (or the given value) per emission and passes values through', async () => {
    const efd = make();
    expect(await firstValueFrom(from(['a', 'b', 'c']).pipe(signalEach(efd), toArray()))).toEqual([
      'a',
      'b',
      'c',
    ]);
    expect(efd.read()).toBe(3n);
    await firstValueFrom(from([1, 2]).pipe(signalEach(efd, 10n), toArray()));
    expect(efd.read()).toBe(20n);
    efd.close();
  });

  it('signalEach errors the stream when the write fails (EBADF after close)', async () => {
    const efd = make();
    efd.close();
    await expect(firstValueFrom(from([1]).pipe(signalEach(efd)))).rejects.toMatchObject({ code: 'EBADF' });
  });

  it('eventFdWriter relays one eventfd into another', async () => {
    const source = make();
    const sink = make();
    const relay = source.signals$.subscribe(eventFdWriter(sink));
    source.write(6n);
    expect(await sink.readAsync()).toBe(6n);
    relay.unsubscribe();
    source.close();
    sink.close();
  });
});

describe('perSignal', () => {
  it('expands counts into unit emissions, clamped at the limit', async () => {
    const units = await firstValueFrom(from([2n, 0n, 1n, 10n]).pipe(perSignal(4), toArray()));
    expect(units).toHaveLength(2 + 0 + 1 + 4);
  });

  it('stops expanding when the consumer unsubscribes', async () => {
    const units = await firstValueFrom(from([1_000_000n]).pipe(perSignal(1_000_000), take(3), toArray()));
    expect(units).toHaveLength(3);
  });
});
