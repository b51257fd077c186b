import { from, map, mergeMap, Observable, type ObservableInput, type OperatorFunction } from 'rxjs';
import type { ChainBuffer, DescriptorChain } from './chain.js';
import type { Virtqueue } from './virtqueue.js';

/** A finished request: the chain's head (split) or buffer ID (packed) and bytes written. */
export interface Completion {
  head: number;
  len: number;
}

/**
 * Kicks → descriptor chains. On every kick (any value, e.g. an eventfd's
 * `signals$`), drains the queue with notifications disabled, then re-enables
 * them and drains again if buffers raced in (the spec's re-check), so no kick
 * is ever lost. A {@link VirtqueueError} ends the stream with that error: the
 * device then sets NEEDS_RESET.
 */
export function chainsOnKick(queue: Virtqueue): OperatorFunction<unknown, DescriptorChain> {
  return (kicks) =>
    new Observable<DescriptorChain>((subscriber) =>
      kicks.subscribe({
        next: () => {
          try {
            drainWithRecheck(
              queue,
              (chain) => subscriber.next(chain.toDescriptorChain()),
              () => subscriber.closed,
            );
          } catch (error) {
            subscriber.error(error);
          }
        },
        error: (error) => subscriber.error(error),
        complete: () => subscriber.complete(),
      }),
    );
}

/**
 * Allocation-free variant: calls `onChain` with the queue's reused
 * {@link ChainBuffer} (valid only during the call) and emits the number of
 * chains handled per kick.
 */
export function drainOnKick(
  queue: Virtqueue,
  onChain: (chain: ChainBuffer) => void,
): OperatorFunction<unknown, number> {
  return (kicks) =>
    new Observable<number>((subscriber) =>
      kicks.subscribe({
        next: () => {
          try {
            subscriber.next(drainWithRecheck(queue, onChain, () => subscriber.closed));
          } catch (error) {
            subscriber.error(error);
          }
        },
        error: (error) => subscriber.error(error),
        complete: () => subscriber.complete(),
      }),
    );
}

/**
 * Completions → "notify the driver?" decisions. Each emission (one completion
 * or a batch) is pushed to the used ring, then one decision is emitted:
 * true when the driver wants an interrupt (flags or EVENT_IDX rule). Pipe it
 * into `filter(Boolean)` and an irqfd.
 */
export function notifyDecisions(
  queue: Virtqueue,
): OperatorFunction<Completion | readonly Completion[], boolean> {
  return (completions) =>
    new Observable<boolean>((subscriber) =>
      completions.subscribe({
        next: (batch) => {
          try {
            // One used-index store per batch: needsNotification() publishes.
            if (isBatch(batch)) for (const c of batch) queue.addUsed(c.head, c.len);
            else queue.addUsed(batch.head, batch.len);
            subscriber.next(queue.needsNotification());
          } catch (error) {
            subscriber.error(error);
          }
        },
        error: (error) => subscriber.error(error),
        complete: () => subscriber.complete(),
      }),
    );
}

/** Only the completions that need an interrupt (what an irqfd should be signalled for). */
export function interrupts(queue: Virtqueue): OperatorFunction<Completion | readonly Completion[], void> {
  return (completions) =>
    new Observable<void>((subscriber) =>
      completions.pipe(notifyDecisions(queue)).subscribe({
        next: (notify) => {
          if (notify) subscriber.next();
        },
        error: (error) => subscriber.error(error),
        complete: () => subscriber.complete(),
      }),
    );
}

/**
 * The whole device loop as one operator: kicks → chains → `handle(chain)`
 * (sync value, Promise or Observable of the bytes written) → used entries →
 * interrupts. Up to `concurrency` chains are in flight at once; completions
 * may come back in any order. Emits once per needed interrupt.
 */
export function serveQueue(
  queue: Virtqueue,
  handle: (chain: DescriptorChain) => ObservableInput<number>,
  concurrency = Number.POSITIVE_INFINITY,
): OperatorFunction<unknown, void> {
  return (kicks) =>
    kicks.pipe(
      chainsOnKick(queue),
      mergeMap(
        (chain) => from(handle(chain)).pipe(map((len): Completion => ({ head: chain.head, len }))),
        concurrency,
      ),
      interrupts(queue),
    );
}

function isBatch(value: Completion | readonly Completion[]): value is readonly Completion[] {
  return Array.isArray(value);
}

/** Drain, re-enable notifications, and drain again while buffers keep arriving. */
function drainWithRecheck(
  queue: Virtqueue,
  onChain: (chain: ChainBuffer) => void,
  stopped: () => boolean,
): number {
  let total = 0;
  for (;;) {
    queue.disableNotifications();
    total += queue.drain(onChain);
    if (stopped()) return total;
    if (!queue.enableNotifications()) return total;
  }
}
