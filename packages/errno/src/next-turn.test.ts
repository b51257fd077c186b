import { describe, expect, it } from 'vitest';
import { makeNextTurn, nextTurn } from './next-turn.js';

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('nextTurn', () => {
  it('runs after the current synchronous run and its microtasks', async () => {
    const order: string[] = [];
    nextTurn(() => order.push('turn'));
    queueMicrotask(() => order.push('microtask'));
    order.push('sync');
    await settle();
    expect(order).toEqual(['sync', 'microtask', 'turn']);
  });

  it('without setImmediate (a browser): MessageChannel tasks, in order', async () => {
    const turn = makeNextTurn({ MessageChannel, setTimeout });
    const order: number[] = [];
    for (let i = 0; i < 5; i++) turn(() => order.push(i));
    queueMicrotask(() => order.push(-1));
    await settle();
    expect(order).toEqual([-1, 0, 1, 2, 3, 4]);
  });

  it('with neither: setTimeout', async () => {
    const delays: number[] = [];
    const turn = makeNextTurn({
      setTimeout: (fn, ms) => {
        delays.push(ms);
        return setTimeout(fn, ms);
      },
    });
    let ran = false;
    turn(() => {
      ran = true;
    });
    await settle();
    expect([ran, delays]).toEqual([true, [0]]);
  });
});
