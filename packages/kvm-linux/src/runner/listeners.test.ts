import { firstValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { MessageListeners } from './listeners.js';

describe('MessageListeners', () => {
  it('delivers later emissions to listeners in order, stops after unsubscribe, completes once', () => {
    const m = new MessageListeners<number>();
    const a: number[] = [];
    const b: number[] = [];
    let completions = 0;
    m.emit(0); // nobody listens: lost (hot)
    const offA = m.listen((v) => a.push(v));
    m.listen(
      (v) => b.push(v),
      () => completions++,
    );
    m.emit(1);
    offA();
    m.emit(2);
    m.complete();
    m.complete();
    m.emit(3);
    expect(a).toEqual([1]);
    expect(b).toEqual([1, 2]);
    expect(completions).toBe(1);
    let late = 0;
    m.listen(
      () => {},
      () => late++,
    );
    expect(late).toBe(1); // listening after the end completes at once
  });

  it('a throwing listener does not starve the next one', async () => {
    const m = new MessageListeners<number>();
    const seen: number[] = [];
    const thrown = new Promise<unknown>((resolve) => process.once('uncaughtException', resolve));
    m.listen(() => {
      throw new Error('listener failed');
    });
    m.listen((v) => seen.push(v));
    m.emit(7);
    expect(seen).toEqual([7]);
    expect(((await thrown) as Error).message).toBe('listener failed');
  });

  it('is an RxJS Observable on demand (hot; completes with the source)', async () => {
    const m = new MessageListeners<string>();
    const all = firstValueFrom(m.observable.pipe(toArray()));
    m.emit('a');
    m.emit('b');
    m.complete();
    expect(await all).toEqual(['a', 'b']);
    expect(m.observable).toBe(m.observable);
  });
});
