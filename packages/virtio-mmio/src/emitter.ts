/**
 * A synchronous event source with plain listeners (`on`) and an RxJS view
 * (`x$`) made on first use. The register file runs inside a VMM's vCPU worker,
 * on the way to the guest's first instruction, where RxJS's CommonJS build
 * costs 80–250 ms to load: only code that asks for an Observable pays for it
 * (#observable loads it then; see observable.ts).
 */
import type * as Rx from 'rxjs';
import { observableClass } from '#observable';

export class Emitter<T> {
  #listeners: ((value: T) => void)[] = [];
  #observable: Rx.Observable<T> | undefined;

  /** Calls `listener` for every later emission; returns the unsubscribe function. */
  listen(listener: (value: T) => void): () => void {
    this.#listeners = [...this.#listeners, listener];
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  emit(value: T): void {
    // A throwing listener does not break the register access nor starve the others; its error
    // surfaces as an uncaught exception, as with an RxJS subscriber.
    for (const listener of this.#listeners) {
      try {
        listener(value);
      } catch (error) {
        setTimeout(() => {
          throw error;
        });
      }
    }
  }

  /** The same events as a hot Observable (RxJS loaded at the first call). */
  get observable(): Rx.Observable<T> {
    if (!this.#observable) {
      const Observable = observableClass();
      this.#observable = new Observable<T>((subscriber) => this.listen((value) => subscriber.next(value)));
    }
    return this.#observable;
  }
}
