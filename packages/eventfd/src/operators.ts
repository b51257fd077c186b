// RxJS glue: eventfds as sinks of streams (as sources they are `efd.signals$`).
import { type MonoTypeOperatorFunction, Observable, type Observer, type OperatorFunction, tap } from 'rxjs';
import type { EventFdLike } from './types.js';

/**
 * Passes every value through and writes `value` (default 1n) to `efd` for each one: the
 * "kick" / "interrupt" side of a pipeline. A failing write (e.g. EAGAIN on a full
 * non-blocking eventfd, EBADF after close) errors the stream.
 */
export function signalEach<T>(efd: EventFdLike, value = 1n): MonoTypeOperatorFunction<T> {
  return tap(() => efd.write(value));
}

/**
 * An Observer that writes each bigint it receives to `efd` (e.g. relaying one eventfd's
 * signals$ into another). Errors and completion are ignored: the eventfd stays open.
 */
export function eventFdWriter(efd: EventFdLike): Observer<bigint> {
  return {
    next: (value) => efd.write(value),
    error: () => {},
    complete: () => {},
  };
}

/**
 * Expands each consumed counter value into that many unit emissions, for consumers that must
 * react once per write rather than once per wake-up. Counts above `limit` (default 1024) are
 * clamped, so a huge counter cannot stall the loop.
 */
export function perSignal(limit = 1024): OperatorFunction<bigint, void> {
  return (source) =>
    new Observable<void>((subscriber) =>
      source.subscribe({
        next: (count) => {
          const n = count > BigInt(limit) ? limit : Number(count);
          for (let i = 0; i < n && !subscriber.closed; i++) subscriber.next();
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => subscriber.complete(),
      }),
    );
}
