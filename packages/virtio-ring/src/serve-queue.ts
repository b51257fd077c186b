/**
 * The device loop, written once (virtio 1.2 §2.7.10 / §2.8.21, rust-vmm
 * virtio-queue's documented `Queue` example): on a kick, disable kicks, pop
 * every available chain, re-enable kicks and pop again if buffers raced in;
 * hand each chain to the device; put its used entry in the ring when it
 * completes; publish a batch of used entries at once and ask the ring, once
 * per batch, whether the driver wants an interrupt.
 *
 * As an RxJS operator: kicks in (any values, e.g. an eventfd's `signals$`),
 * one emission out per interrupt the driver asked for (pipe it into an irqfd
 * with `signalEach`, or into a transport's `signalUsedBuffer`).
 *
 * - Completing the kick stream stops popping; the stream completes once every
 *   chain in flight has completed and its used entry is published (what a
 *   vhost-user GET_VRING_BASE or a device pause needs).
 * - Unsubscribing abandons the queue at once: late completions are dropped and
 *   never touch guest memory (what a device reset needs).
 * - A hostile ring (VirtqueueError), a device that throws or rejects, or a used
 *   length the ring refuses ends the stream with that error: the device then
 *   sets NEEDS_RESET. Nothing is thrown into the event loop.
 */
import { nextTurn } from '@rxvmm/errno';
import { Observable, type OperatorFunction, type Subscriber } from 'rxjs';
import { ChainBuffer, type DescriptorChain } from './chain.js';
import type { Virtqueue } from './virtqueue.js';

/**
 * Serves one chain: the number of bytes written into its device-writable
 * buffers, now (a number) or later (a promise). Async handlers run
 * concurrently and may complete in any order.
 */
export type ChainHandler = (chain: DescriptorChain) => number | PromiseLike<number>;

/**
 * Serves one chain at once from the loop's reused {@link ChainBuffer} (numeric addresses in typed
 * arrays, no object per segment): the number of bytes written into its device-writable buffers.
 * The buffer is refilled by the next pop, so it is read during the call only.
 */
export type ChainBufferHandler = (chain: ChainBuffer) => number;

/** Options of `serveQueue`: limits per turn and in flight, and observers. */
export interface ServeQueueOptions {
  /**
   * Most chains in flight (async handlers not yet settled) at once; popping
   * pauses at the limit and resumes as they complete. Default: the queue size,
   * which a well-behaved driver cannot exceed anyway.
   */
  concurrency?: number;
  /**
   * Most chains popped in one turn of the event loop. A driver on another
   * thread can republish chains as fast as they are popped; past the budget
   * the rest waits for the next turn, so timers, sockets and other queues run.
   * Default: 4 × the queue size.
   */
  budget?: number;
  /**
   * Serves every chain with this synchronous handler instead of `handle`: chains are popped into
   * one reused ChainBuffer (`popInto`), so a request costs no object per descriptor. For devices
   * whose requests complete on the calling thread (a disk served with preadv/pwritev).
   */
  handleBuffer?: ChainBufferHandler;
  /**
   * Observes each chain as it is popped (before its handler runs): statistics, inflight records.
   * With `handleBuffer` it is the reused ChainBuffer (read it during the call only).
   */
  onPop?(chain: DescriptorChain | ChainBuffer): void;
  /** Observes each batch of used entries right after it is published. */
  onPublish?(heads: readonly number[]): void;
}

/** Runs the device loop of `queue` on each kick: see the file comment. */
export function serveQueue(
  queue: Virtqueue,
  handle: ChainHandler,
  options: ServeQueueOptions = {},
): OperatorFunction<unknown, void> {
  const limits = {
    concurrency: positive(options.concurrency, queue.size, 'concurrency'),
    budget: positive(options.budget, 4 * queue.size, 'budget'),
  };
  return (kicks) =>
    new Observable<void>((subscriber) => {
      const server = new QueueServer(queue, handle, { ...options, ...limits }, subscriber);
      const subscription = kicks.subscribe({
        next: () => server.kick(),
        error: (error: unknown) => server.fail(error),
        complete: () => server.finish(),
      });
      return () => {
        subscription.unsubscribe();
        server.abandon();
      };
    });
}

/** The state of one served queue. One instance per subscription. */
class QueueServer {
  readonly #queue: Virtqueue;
  readonly #handle: ChainHandler;
  readonly #subscriber: Subscriber<void>;
  readonly #concurrency: number;
  readonly #budget: number;
  readonly #handleBuffer: ChainBufferHandler | undefined;
  /** The chain `handleBuffer` is given, refilled by every pop (null without `handleBuffer`). */
  readonly #buffer: ChainBuffer | null;
  readonly #onPop: ((chain: DescriptorChain | ChainBuffer) => void) | undefined;
  readonly #onPublish: ((heads: readonly number[]) => void) | undefined;
  /** Heads added to the used ring since the last publish (only tracked when someone observes them). */
  readonly #unpublished: number[] = [];
  #inflight = 0;
  /** Work may be waiting in the ring: a kick came, or a drain paused at a limit. */
  #pending = false;
  #draining = false;
  #turnScheduled = false;
  /** Used entries were added and not yet published. */
  #dirty = false;
  #flushScheduled = false;
  /** The kick stream completed: pop nothing more, complete after the last chain. */
  #finishing = false;
  #closed = false;

  constructor(
    queue: Virtqueue,
    handle: ChainHandler,
    options: ServeQueueOptions & { concurrency: number; budget: number },
    subscriber: Subscriber<void>,
  ) {
    this.#queue = queue;
    this.#handle = handle;
    this.#subscriber = subscriber;
    this.#concurrency = options.concurrency;
    this.#budget = options.budget;
    this.#onPop = options.onPop;
    this.#handleBuffer = options.handleBuffer;
    this.#buffer = options.handleBuffer ? new ChainBuffer() : null;
    this.#onPublish = options.onPublish;
  }

  kick(): void {
    if (this.#closed || this.#finishing) return;
    this.#pending = true;
    // A drain that yielded its turn resumes from the scheduled turn, not from here:
    // a stream of kicks must not buy a hostile driver extra budget.
    if (!this.#turnScheduled) this.#drain();
  }

  finish(): void {
    if (this.#closed) return;
    this.#finishing = true;
    this.#pending = false;
    this.#completeIfIdle();
  }

  fail(error: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#subscriber.error(error);
  }

  abandon(): void {
    this.#closed = true;
  }

  /** Pops and starts chains until the ring is empty, or a limit pauses the drain. */
  #drain(): void {
    if (this.#draining || this.#closed) return;
    this.#draining = true;
    const queue = this.#queue;
    const buffer = this.#buffer;
    let budget = this.#budget;
    try {
      while (this.#pending && !this.#finishing) {
        queue.disableNotifications();
        for (;;) {
          if (this.#inflight >= this.#concurrency) return; // a completion resumes the drain
          if (budget === 0) {
            this.#yieldTurn();
            return;
          }
          if (buffer !== null) {
            if (!queue.popInto(buffer)) break;
            budget--;
            this.#startBuffered(buffer);
          } else {
            const chain = queue.pop();
            if (chain === null) break;
            budget--;
            this.#start(chain);
          }
          if (this.#closed) return;
        }
        // Empty: ask for kicks again, and pop once more if buffers raced in meanwhile.
        this.#pending = queue.enableNotifications();
      }
    } catch (error) {
      this.fail(error);
    } finally {
      this.#draining = false;
      // Synchronous completions of this drain: one batch, published before the drain returns.
      if (this.#dirty) this.#flush();
    }
  }

  #start(chain: DescriptorChain): void {
    this.#onPop?.(chain);
    const head = chain.head;
    const result = this.#handle(chain);
    if (typeof result === 'number') {
      this.#addUsed(head, result);
      return;
    }
    this.#inflight++;
    result.then(
      (len) => {
        this.#inflight--;
        if (this.#closed) return;
        try {
          this.#addUsed(head, len);
        } catch (error) {
          this.fail(error);
          return;
        }
        if (this.#pending) this.#drain();
        else this.#completeIfIdle();
      },
      (error: unknown) => {
        this.#inflight--;
        this.fail(error);
      },
    );
  }

  /** A chain for `handleBuffer`: served at once, its used entry added (published when the drain ends). */
  #startBuffered(chain: ChainBuffer): void {
    this.#onPop?.(chain);
    const head = chain.head;
    this.#addUsed(head, this.#handleBuffer!(chain));
  }

  #addUsed(head: number, len: number): void {
    this.#queue.addUsed(head, len);
    if (this.#onPublish) this.#unpublished.push(head);
    this.#dirty = true;
    if (this.#draining || this.#flushScheduled) return;
    // Completions settling in one turn share one used-index store and one notification decision.
    this.#flushScheduled = true;
    queueMicrotask(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  /** Publishes the used entries added since the last flush; emits if the driver wants an interrupt. */
  #flush(): void {
    if (this.#closed || !this.#dirty) return;
    this.#dirty = false;
    let notify: boolean;
    try {
      notify = this.#queue.needsNotification(); // publishes the used index first
    } catch (error) {
      this.fail(error);
      return;
    }
    if (this.#onPublish && this.#unpublished.length > 0) this.#onPublish(this.#unpublished.splice(0));
    if (notify) this.#subscriber.next();
    this.#completeIfIdle();
  }

  #yieldTurn(): void {
    this.#turnScheduled = true;
    nextTurn(() => {
      this.#turnScheduled = false;
      this.#drain();
    });
  }

  #completeIfIdle(): void {
    if (!this.#finishing || this.#closed || this.#inflight > 0 || this.#dirty) return;
    this.#closed = true;
    this.#subscriber.complete();
  }
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!(value >= 1)) throw new RangeError(`serveQueue: ${name} must be at least 1, got ${value}`);
  return value;
}
