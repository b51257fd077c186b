/**
 * A hot, synchronous message source with plain listeners and an RxJS view made
 * on demand. The runner's module graph is also loaded inside every vCPU worker
 * on the way to the guest's first instruction, and RxJS's CommonJS build costs
 * 80–250 ms to load there: only a caller that asks for the Observable pays it.
 */
import { createRequire } from 'node:module';
import type * as Rx from 'rxjs';

// RxJS resolves to its CommonJS build under Node for both import and require: the same module instance.
const require = createRequire(import.meta.url);

export class MessageListeners<T = unknown> {
  #listeners: { next: (value: T) => void; complete?: (() => void) | undefined }[] = [];
  #completed = false;
  #observable: Rx.Observable<T> | undefined;

  /** Calls `next` for every later `emit`, `complete` once at the end (at once if already over). */
  listen(next: (value: T) => void, complete?: () => void): () => void {
    if (this.#completed) {
      complete?.();
      return () => {};
    }
    const entry = { next, complete };
    this.#listeners.push(entry);
    return () => {
      this.#listeners = this.#listeners.filter((e) => e !== entry);
    };
  }

  emit(value: T): void {
    // A throwing listener does not starve the others; its error surfaces as an uncaught exception (as in RxJS).
    for (const { next } of this.#listeners) {
      try {
        next(value);
      } catch (error) {
        setTimeout(() => {
          throw error;
        });
      }
    }
  }

  complete(): void {
    if (this.#completed) return;
    this.#completed = true;
    const listeners = this.#listeners;
    this.#listeners = [];
    for (const { complete } of listeners) complete?.();
  }

  /** The same stream as an Observable (RxJS loaded at the first call). */
  get observable(): Rx.Observable<T> {
    if (!this.#observable) {
      const { Observable } = require('rxjs') as typeof Rx;
      this.#observable = new Observable<T>((subscriber) =>
        this.listen(
          (value) => subscriber.next(value),
          () => subscriber.complete(),
        ),
      );
    }
    return this.#observable;
  }
}
