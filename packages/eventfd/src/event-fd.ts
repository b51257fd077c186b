// EventFd: a real Linux eventfd. Synchronous calls are single syscalls; the async
// API and signals$ wait for readiness through one uv_poll handle per EventFd, on
// the loop of the thread that uses it, so nothing ever blocks the event loop
// (no fs.read, no libuv threadpool).
//
// The fd is always created O_NONBLOCK | O_CLOEXEC: a poller must never be able to
// block the loop on a spurious wake-up. `nonblock: false` is implemented above the
// fd: a synchronous call that cannot complete waits in poll(2) (blocking the
// thread, as read(2) on a blocking eventfd would).
import { errnoError, isErrno } from '@rxvmm/errno';
import { Observable, Subject } from 'rxjs';
import { inspectEventFd, peekEventFdCount } from '#host-fds';
import { sys } from '#native';
import { EFD_COUNTER_MAX, U64_MAX } from './constants.js';
import { checkEventFdState, EVENTFD_STATE_VERSION, type EventFdState } from './state.js';
import type { ReadinessPoller } from './syscalls.js';
import type { EventFdLike, EventFdOptions } from './types.js';
import { checkBigint, checkU64, parseOptions } from './validate.js';
import { closedError, type ReadWaiter, rejectWaiters, type WriteWaiter } from './waiters.js';

/** Set only while EventFd.fromFd() runs the constructor on an existing fd. */

const isEagain = (error: unknown) => isErrno(error, 'EAGAIN');

/** Only EventFd.fromFd can make one: the constructor's hidden second argument. */
const ADOPT: unique symbol = Symbol('adopt');
interface Adopted {
  [ADOPT]: true;
  fd: number;
  semaphore: boolean;
}

export class EventFd implements EventFdLike {
  readonly fd: number;
  readonly semaphore: boolean;
  readonly nonblock: boolean;
  /**
   * Emits each value consumed when the eventfd became readable; completes on close. It is
   * shared: one poller serves all subscribers, each readiness is one read whose value every
   * subscriber sees. Polling runs while someone subscribes and stops when the last one leaves.
   */
  readonly signals$: Observable<bigint>;

  #closed = false;
  #poller: ReadinessPoller | undefined;
  #events = 0;
  #readWaiters: ReadWaiter[] = [];
  #writeWaiters: WriteWaiter[] = [];
  #signals = new Subject<bigint>();
  #subscribers = 0;
  /** Blocked writers are parked on a timer (see #parkWrites); the current back-off in ms. */
  #parkTimer: NodeJS.Timeout | undefined;
  #parkDelay = 0;

  /** `adopted` is private to EventFd.fromFd (its key symbol is not exported). */
  constructor(options?: EventFdOptions, adopted?: Adopted) {
    const parsed = parseOptions(options);
    const s = sys();
    this.nonblock = parsed.nonblock;
    if (adopted?.[ADOPT] === true) {
      this.semaphore = adopted.semaphore;
      this.fd = adopted.fd;
    } else {
      this.semaphore = parsed.semaphore;
      const flags = s.EFD_NONBLOCK | s.EFD_CLOEXEC | (parsed.semaphore ? s.EFD_SEMAPHORE : 0);
      this.fd = s.eventfd(Number(parsed.initval), flags);
    }
    this.signals$ = new Observable<bigint>((subscriber) => {
      if (this.#closed) {
        subscriber.complete();
        return undefined;
      }
      const inner = this.#signals.subscribe(subscriber);
      this.#subscribers++;
      this.#updatePolling();
      return () => {
        inner.unsubscribe();
        this.#subscribers--;
        this.#updatePolling();
      };
    });
  }

  /**
   * Adopts an eventfd this process already has open (e.g. one received over SCM_RIGHTS by
   * vhost-user): the EventFd owns it from now on and `close()` closes it. The fd is switched to
   * O_NONBLOCK, which the poller relies on (a file-status flag: whoever shares the open file sees
   * it too). Semaphore mode is read from /proc/self/fdinfo (Linux >= 6.4 reports it); on older
   * kernels `options.semaphore` says it. EBADF when `fd` is not open, EINVAL when it is not an
   * eventfd, TypeError when it is not a number.
   */
  static fromFd(fd: number, options?: Pick<EventFdOptions, 'semaphore' | 'nonblock'>): EventFd {
    if (typeof fd !== 'number') throw new TypeError('fd must be a number');
    if (!Number.isInteger(fd) || fd < 0)
      throw errnoError('EBADF', `${fd} is not a file descriptor`, 'fromFd');
    const parsed = parseOptions(options);
    const { semaphore } = inspectEventFd(fd);
    sys().setNonBlocking(fd, true);
    return new EventFd(options, { [ADOPT]: true, fd, semaphore: semaphore ?? parsed.semaphore });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** read(2): the counter (then 0), or 1 in semaphore mode. `EAGAIN` at 0 when nonblock. */
  read(): bigint {
    this.#checkOpen('read');
    const s = sys();
    for (;;) {
      const value = this.nonblock ? s.read8(this.fd) : s.tryRead8(this.fd);
      if (value !== null) {
        this.#kickWrites();
        return value;
      }
      s.pollWait(this.fd, s.POLLIN, -1);
    }
  }

  /** write(2): adds `value`. `EINVAL` for 2^64-1; `EAGAIN` past 0xfffffffffffffffe when nonblock. */
  write(value: bigint): void {
    checkBigint(value, 'value');
    this.#checkOpen('write');
    checkU64(value, 'write');
    const s = sys();
    if (this.nonblock) {
      s.write8(this.fd, value);
      return;
    }
    for (;;) {
      try {
        s.write8(this.fd, value);
        return;
      } catch (error) {
        if (!isEagain(error)) throw error;
      }
      s.pollWait(this.fd, s.POLLOUT, -1);
    }
  }

  /** A read that waits for the counter to be > 0 without blocking the event loop. */
  async readAsync(): Promise<bigint> {
    this.#checkOpen('read');
    if (this.#readWaiters.length === 0) {
      const value = sys().tryRead8(this.fd);
      if (value !== null) {
        this.#kickWrites();
        return value;
      }
    }
    return new Promise<bigint>((resolve, reject) => {
      this.#readWaiters.push({ resolve, reject });
      this.#updatePolling();
    });
  }

  /** A write that waits until the counter can take `value`, without blocking the event loop. */
  async writeAsync(value: bigint): Promise<void> {
    checkBigint(value, 'value');
    this.#checkOpen('write');
    checkU64(value, 'write');
    if (this.#writeWaiters.length === 0) {
      try {
        sys().write8(this.fd, value);
        return;
      } catch (error) {
        if (!isEagain(error)) throw error;
      }
    } else if (value === U64_MAX) {
      // The kernel's own check, made now rather than when the queue reaches this write.
      throw errnoError('EINVAL', 'cannot write 0xffffffffffffffff', 'write');
    }
    return new Promise<void>((resolve, reject) => {
      this.#writeWaiters.push({ value, resolve, reject });
      this.#updatePolling();
    });
  }

  /** Closes the fd (poller first). Pending async calls reject with EBADF; signals$ completes. Idempotent. */
  /**
   * The counter as plain data, read without consuming it (/proc/self/fdinfo): a poller on the fd,
   * a vCPU or the kernel keeps seeing the count. Take it while nothing writes the eventfd (the VM
   * paused), or it is a moment's value.
   */
  state(): EventFdState {
    this.#checkOpen('state');
    return {
      version: EVENTFD_STATE_VERSION,
      count: peekEventFdCount(this.fd).toString(),
      semaphore: this.semaphore,
    };
  }

  /**
   * A new eventfd holding a saved counter (`state()` of either implementation; checked, `EINVAL`
   * otherwise). Only in-kernel signals can saturate a counter to 2^64-1; write(2) cannot, so a
   * saturated count comes back as 2^64-2, still readable.
   */
  static fromState(state: EventFdState, options: Pick<EventFdOptions, 'nonblock'> = {}): EventFd {
    const { count, semaphore } = checkEventFdState(state);
    const efd = new EventFd({ semaphore, nonblock: options.nonblock ?? false });
    try {
      if (count > 0n) efd.write(count > EFD_COUNTER_MAX ? EFD_COUNTER_MAX : count);
    } catch (error) {
      efd.close();
      throw error;
    }
    return efd;
  }

  /** Closes the fd: pending async calls reject with `EBADF`, `signals$` completes. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#parkTimer);
    this.#poller?.close();
    this.#poller = undefined;
    sys().close(this.fd);
    rejectWaiters(this.#readWaiters, this.#writeWaiters, (syscall) => closedError(this.fd, syscall));
    this.#signals.complete();
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #checkOpen(syscall: string): void {
    if (this.#closed) throw closedError(this.fd, syscall);
  }

  /** Polls for exactly what someone waits for: readable for readers, writable for blocked writers. */
  #updatePolling(): void {
    if (this.#closed) return;
    const s = sys();
    const readers = this.#readWaiters.length > 0 || this.#subscribers > 0;
    const writers = this.#writeWaiters.length > 0 && this.#parkTimer === undefined;
    const events = (readers ? s.UV_READABLE : 0) | (writers ? s.UV_WRITABLE : 0);
    if (events === this.#events) return;
    this.#events = events;
    if (events === 0) {
      this.#poller?.stop();
      return;
    }
    // Counter mode: the addon reads the value on readiness (one crossing per signal).
    this.#poller ??= new s.Poller(this.fd, (error, ready, value) => this.#onReady(error, ready, value), true);
    this.#poller.start(events);
  }

  #onReady(error: NodeJS.ErrnoException | null, events: number, value: bigint | undefined): void {
    if (this.#closed) return;
    const s = sys();
    if (error !== null) {
      // Only reachable through a failing read or poll: fail everyone waiting, keep the fd.
      rejectWaiters(this.#readWaiters, this.#writeWaiters, () => error);
      clearTimeout(this.#parkTimer);
      this.#parkTimer = undefined;
      const signals = this.#signals;
      this.#signals = new Subject<bigint>();
      signals.error(error);
      this.#updatePolling();
      return;
    }
    if (value !== undefined) {
      const waiter = this.#readWaiters.shift();
      if (waiter !== undefined) waiter.resolve(value);
      else this.#signals.next(value);
      this.#kickWrites();
    }
    if (events & s.UV_WRITABLE) this.#retryWrites();
    this.#updatePolling();
  }

  /** A read through this EventFd made room: parked writers retry now rather than on their timer. */
  #kickWrites(): void {
    if (this.#parkTimer === undefined) return;
    clearTimeout(this.#parkTimer);
    this.#parkTimer = undefined;
    this.#retryWrites();
    this.#updatePolling();
  }

  /**
   * POLLOUT only says "counter < 0xfffffffffffffffe", not "this value fits", and epoll is
   * level-triggered: polling for writability while the first blocked write still does not fit
   * would spin. So such writers wait on a timer with back-off (1, 2, 4 … 16 ms) instead,
   * cut short by any read made through this EventFd. Reads by other holders of the fd
   * (another thread, the kernel, another process) are noticed on the next tick of the timer.
   */
  #parkWrites(): void {
    this.#parkDelay = Math.min(Math.max(this.#parkDelay * 2, 1), 16);
    clearTimeout(this.#parkTimer);
    this.#parkTimer = setTimeout(() => {
      this.#parkTimer = undefined;
      this.#retryWrites();
      this.#updatePolling();
    }, this.#parkDelay);
  }

  #retryWrites(): void {
    const s = sys();
    while (!this.#closed) {
      const waiter = this.#writeWaiters[0];
      if (waiter === undefined) return;
      try {
        s.write8(this.fd, waiter.value);
      } catch (error) {
        if (isEagain(error)) {
          this.#parkWrites();
          return;
        }
        this.#writeWaiters.shift();
        waiter.reject(error as Error);
        continue;
      }
      this.#writeWaiters.shift();
      this.#parkDelay = 0;
      waiter.resolve();
    }
  }
}
