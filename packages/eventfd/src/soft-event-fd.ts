// SoftEventFd: the kernel's eventfd (fs/eventfd.c) re-implemented in
// TypeScript, with no fd and no native code. The conformance suite holds it to
// the kernel's behaviour errno for errno; where they differ this one is wrong.
//
// It also carries the kernel-side API that KVM's ioeventfd / irqfd use on a
// real eventfd (eventfd_signal, eventfd_ctx_do_read, the wait queue), so the
// pure-TypeScript SoftKvm can be wired exactly like the kernel is.
import { errnoError, nextTurn } from '@rxvmm/errno';
import { Observable, Subject } from 'rxjs';
import { U64_MAX } from './constants.js';
import { allocateFd, lookupFd, releaseFd } from './registry.js';
import { checkEventFdState, EVENTFD_STATE_VERSION, type EventFdState } from './state.js';
import type { EventFdLike, EventFdOptions, EventFdWatcher } from './types.js';
import { checkBigint, checkU64, parseOptions } from './validate.js';
import { closedError, type ReadWaiter, rejectWaiters, type WriteWaiter } from './waiters.js';

/** A blocking synchronous call that could only complete if another thread acted: none can. */
function wouldDeadlock(syscall: string): Error {
  return Object.assign(
    new Error(`EDEADLK: a blocking ${syscall} of an SoftEventFd would wait forever; use the async API`),
    { code: 'EDEADLK', syscall },
  );
}

export class SoftEventFd implements EventFdLike {
  /** The open SoftEventFd with this synthetic fd number, if any (this realm only). */
  static fromFd(fd: number): SoftEventFd | undefined {
    return lookupFd<SoftEventFd>(fd);
  }

  readonly fd: number;
  readonly semaphore: boolean;
  readonly nonblock: boolean;
  /** Emits each value consumed when the eventfd became readable; shared by all subscribers; completes on close. */
  readonly signals$: Observable<bigint>;

  #count: bigint;
  #closed = false;
  #watchers = new Set<EventFdWatcher>();
  #readWaiters: ReadWaiter[] = [];
  #writeWaiters: WriteWaiter[] = [];
  #signals = new Subject<bigint>();
  #subscribers = 0;
  #pumpScheduled = false;

  constructor(options?: EventFdOptions) {
    const parsed = parseOptions(options);
    this.#count = parsed.initval;
    this.semaphore = parsed.semaphore;
    this.nonblock = parsed.nonblock;
    this.fd = allocateFd(this);
    this.signals$ = new Observable<bigint>((subscriber) => {
      if (this.#closed) {
        subscriber.complete();
        return undefined;
      }
      const inner = this.#signals.subscribe(subscriber);
      this.#subscribers++;
      this.#schedulePump();
      return () => {
        inner.unsubscribe();
        this.#subscribers--;
      };
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** read(2): the counter (then 0), or 1 (then counter - 1) in semaphore mode. */
  read(): bigint {
    this.#checkOpen('read');
    if (this.#count === 0n) {
      throw this.nonblock ? errnoError('EAGAIN', 'eventfd counter is 0', 'read') : wouldDeadlock('read');
    }
    return this.#take();
  }

  /** write(2): adds `value` to the counter. */
  write(value: bigint): void {
    checkBigint(value, 'value');
    this.#checkOpen('write');
    this.#checkWritable(value);
    if (!this.#fits(value)) {
      throw this.nonblock
        ? errnoError('EAGAIN', 'the counter would exceed 0xfffffffffffffffe', 'write')
        : wouldDeadlock('write');
    }
    this.#add(value);
  }

  /** A read that waits (without blocking anything) until the counter is > 0. */
  async readAsync(): Promise<bigint> {
    this.#checkOpen('read');
    if (this.#count > 0n && this.#readWaiters.length === 0) return this.#take();
    return new Promise<bigint>((resolve, reject) => {
      this.#readWaiters.push({ resolve, reject });
      this.#schedulePump();
    });
  }

  /** A write that waits until the counter can take `value` without passing 0xfffffffffffffffe. */
  async writeAsync(value: bigint): Promise<void> {
    checkBigint(value, 'value');
    this.#checkOpen('write');
    this.#checkWritable(value);
    if (this.#fits(value) && this.#writeWaiters.length === 0) {
      this.#add(value);
      return;
    }
    return new Promise<void>((resolve, reject) => {
      this.#writeWaiters.push({ value, resolve, reject });
    });
  }

  // ---- kernel-side API (ioeventfd / irqfd), for SoftKvm ----

  /**
   * eventfd_signal(): adds `n` (default 1n) and wakes the watchers. Never fails: the counter
   * saturates at 2^64-1 (then poll reports an error and writes wait). A no-op after close,
   * like a signal to a kernel eventfd that only KVM still holds.
   */
  signal(n = 1n): void {
    checkBigint(n, 'n');
    checkU64(n, 'eventfd_signal');
    if (this.#closed) return;
    const sum = this.#count + n;
    // biome-ignore lint/complexity/useMathMinMax: Math.min does not take bigints
    this.#count = sum > U64_MAX ? U64_MAX : sum;
    this.#afterAdd();
  }

  /**
   * eventfd_ctx_do_read(): takes the whole counter and zeroes it (0n when empty, never EAGAIN).
   * In semaphore mode it takes 1, exactly as the kernel's helper does. 0n after close.
   */
  drain(): bigint {
    if (this.#closed || this.#count === 0n) return 0n;
    return this.#take();
  }

  /**
   * Adds a wait-queue entry: `readable` runs synchronously after each write/signal that leaves
   * the counter > 0, `hangup` once on close. Returns the function that removes it. EBADF when closed.
   */
  watch(listener: EventFdWatcher): () => void {
    this.#checkOpen('watch');
    // A wrapper per call, so the same listener may be added twice and removed independently.
    const entry: EventFdWatcher = {
      readable: () => listener.readable?.(),
      hangup: () => listener.hangup?.(),
    };
    this.#watchers.add(entry);
    return () => {
      this.#watchers.delete(entry);
    };
  }

  /** Closes: pending async calls reject with EBADF, watchers see hangup, signals$ completes. Idempotent. */
  /** The counter as plain data (nothing is consumed). */
  state(): EventFdState {
    this.#checkOpen('state');
    return { version: EVENTFD_STATE_VERSION, count: this.#count.toString(), semaphore: this.semaphore };
  }

  /** A new SoftEventFd holding a saved counter (`state()` of either implementation; `EINVAL` otherwise). */
  static fromState(state: EventFdState, options: Pick<EventFdOptions, 'nonblock'> = {}): SoftEventFd {
    const { count, semaphore } = checkEventFdState(state);
    const efd = new SoftEventFd({ semaphore, nonblock: options.nonblock ?? false });
    efd.#count = count;
    return efd;
  }

  /** Closes it: watchers see a hang-up (an irqfd detaches), pending async calls reject with `EBADF`, `signals$` completes. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    releaseFd(this.fd);
    const watchers = [...this.#watchers];
    this.#watchers.clear();
    for (const watcher of watchers) this.#notify(() => watcher.hangup?.());
    rejectWaiters(this.#readWaiters, this.#writeWaiters, (syscall) => closedError(this.fd, syscall));
    this.#signals.complete();
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }

  // ---- internals ----

  #checkOpen(syscall: string): void {
    if (this.#closed) throw closedError(this.fd, syscall);
  }

  /** The kernel's own argument checks on a write: not a u64 (ours) and 2^64-1 (its). */
  #checkWritable(value: bigint): void {
    checkU64(value, 'write');
    if (value === U64_MAX) throw errnoError('EINVAL', 'cannot write 0xffffffffffffffff', 'write');
  }

  /** fs/eventfd.c: `ULLONG_MAX - ctx->count > ucnt`. */
  #fits(value: bigint): boolean {
    return U64_MAX - this.#count > value;
  }

  #take(): bigint {
    const value = this.semaphore ? 1n : this.#count;
    this.#count -= value;
    // Room appeared: blocked writers may proceed (on a later turn, as woken kernel writers do).
    if (this.#writeWaiters.length > 0) this.#schedulePump();
    return value;
  }

  #add(value: bigint): void {
    this.#count += value;
    this.#afterAdd();
  }

  #afterAdd(): void {
    if (this.#count === 0n) return;
    for (const watcher of [...this.#watchers]) {
      if (this.#watchers.has(watcher)) this.#notify(() => watcher.readable?.());
    }
    this.#schedulePump();
  }

  /** A throwing watcher must not make the write that woke it fail: report it like an uncaught error. */
  #notify(call: () => void): void {
    try {
      call();
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  #hasReaders(): boolean {
    return this.#readWaiters.length > 0 || this.#subscribers > 0;
  }

  #schedulePump(): void {
    if (this.#pumpScheduled || this.#closed) return;
    const readable = this.#count > 0n && this.#hasReaders();
    const first = this.#writeWaiters[0];
    const writable = first !== undefined && this.#fits(first.value);
    if (!readable && !writable) return;
    this.#pumpScheduled = true;
    // A later turn of the event loop, like a uv_poll readiness callback: writes made in one
    // synchronous run coalesce into one value, and a subscriber that writes back cannot recurse.
    nextTurn(() => this.#pump());
  }

  /**
   * One readiness event, shaped like EventFd's uv_poll callback: readiness is sampled first
   * (as epoll would), then at most one read is delivered, then blocked writers are retried
   * in order until one does not fit.
   */
  #pump(): void {
    this.#pumpScheduled = false;
    if (this.#closed) return;
    const readable = this.#count > 0n && this.#hasReaders();
    const first = this.#writeWaiters[0];
    const writable = first !== undefined && this.#fits(first.value);
    if (readable) {
      const value = this.#take();
      const waiter = this.#readWaiters.shift();
      if (waiter !== undefined) waiter.resolve(value);
      else this.#signals.next(value);
    }
    while (writable && !this.#closed) {
      const first = this.#writeWaiters[0];
      if (first === undefined || !this.#fits(first.value)) break;
      this.#writeWaiters.shift();
      this.#add(first.value);
      first.resolve();
    }
    this.#schedulePump();
  }
}
