/**
 * Runs `fn` on a later turn of the event loop, after pending I/O: Node's
 * `setImmediate` where there is one; in a browser a MessageChannel task (a
 * `setTimeout(fn, 0)` is clamped to 4 ms once nested, which would pace every
 * eventfd signal); `setTimeout` where neither exists.
 */
export const nextTurn: (fn: () => void) => void = makeNextTurn(globalThis);

/** What `makeNextTurn` looks for (globalThis, or a test's stand-in). */
export interface TurnHost {
  setImmediate?: (fn: () => void) => unknown;
  MessageChannel?: typeof MessageChannel;
  setTimeout: (fn: () => void, ms: number) => unknown;
}

/** `nextTurn` built from what `host` offers. */
export function makeNextTurn(host: TurnHost): (fn: () => void) => void {
  const { setImmediate, MessageChannel: Channel, setTimeout } = host;
  if (typeof setImmediate === 'function') return (fn) => void setImmediate(fn);
  if (typeof Channel === 'function') {
    // One channel for every caller: tasks run in the order they were posted.
    const tasks: (() => void)[] = [];
    const channel = new Channel();
    // The DOM's MessagePort (Node's has the same `onmessage`, and `unref`, which keeps a port
    // from holding the process open).
    const port = channel.port1 as unknown as { onmessage: (() => void) | null; unref?: () => void };
    port.onmessage = () => tasks.shift()?.();
    port.unref?.();
    return (fn) => {
      tasks.push(fn);
      channel.port2.postMessage(undefined);
    };
  }
  return (fn) => void setTimeout(fn, 0);
}
