import { firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { Emitter } from './emitter.js';

describe('Emitter', () => {
  it('calls listeners in order for later emissions, not after unsubscribe, even when one unsubscribes itself', () => {
    const e = new Emitter<number>();
    const seen: string[] = [];
    e.emit(0); // nobody listens: lost (hot)
    const offA = e.listen((v) => {
      seen.push(`a${v}`);
      offA();
    });
    e.listen((v) => seen.push(`b${v}`));
    e.emit(1);
    e.emit(2);
    expect(seen).toEqual(['a1', 'b1', 'b2']);
  });

  it('a throwing listener neither breaks emit nor starves the next one', async () => {
    const e = new Emitter<number>();
    const seen: number[] = [];
    const thrown = new Promise<unknown>((resolve) => process.once('uncaughtException', resolve));
    e.listen(() => {
      throw new Error('listener failed');
    });
    e.listen((v) => seen.push(v));
    expect(() => e.emit(5)).not.toThrow();
    expect(seen).toEqual([5]);
    expect(((await thrown) as Error).message).toBe('listener failed');
  });

  it('is a hot RxJS Observable on demand, the same one every time', async () => {
    const e = new Emitter<string>();
    const first = firstValueFrom(e.observable);
    e.emit('x');
    expect(await first).toBe('x');
    expect(e.observable).toBe(e.observable);
  });
});
