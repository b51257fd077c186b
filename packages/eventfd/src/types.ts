import type { Observable } from 'rxjs';
import type { EventFdState } from './state.js';

/** Options of `new EventFd()` / `new SoftEventFd()`, mirroring eventfd2(2). */
export interface EventFdOptions {
  /** Initial counter value: an integer 0..2^32-1 (number or bigint). Default 0. */
  initval?: number | bigint;
  /** EFD_SEMAPHORE: a read returns 1 and decrements the counter by 1. Default false. */
  semaphore?: boolean;
  /**
   * EFD_NONBLOCK semantics for the synchronous `read()`/`write()`: true makes them fail with
   * `EAGAIN` instead of waiting. Default false (a sync call that cannot complete blocks the
   * calling thread, like read(2) on a blocking eventfd). The async API always waits.
   */
  nonblock?: boolean;
}

/** What EventFd and SoftEventFd have in common (the user-space side of an eventfd). */
export interface EventFdLike extends Disposable {
  /** The fd number (synthetic for SoftEventFd). */
  readonly fd: number;
  readonly closed: boolean;
  /** Whether the eventfd was made with `semaphore: true`. */
  readonly semaphore: boolean;
  /** Whether the synchronous API is non-blocking. */
  readonly nonblock: boolean;
  /** read(2): takes the counter (1 in semaphore mode); waits while it is 0, or `EAGAIN` when non-blocking. */
  read(): bigint;
  /** write(2): adds `value` (at most 2^64-2; 2^64-1 is `EINVAL`); waits while the sum would overflow, or `EAGAIN` when non-blocking. */
  write(value: bigint): void;
  /** A read that waits without blocking the thread (resolves once the counter is non-zero). */
  readAsync(): Promise<bigint>;
  /** A write that waits without blocking the thread (resolves once it fits). */
  writeAsync(value: bigint): Promise<void>;
  /** The counter as plain data, without consuming it (snapshots; `fromState` restores it). */
  state(): EventFdState;
  /** Emits each value a read consumed when the eventfd became readable; completes on close. */
  readonly signals$: Observable<bigint>;
  /** Closes the eventfd: pending async calls reject with `EBADF`, `signals$` completes. */
  close(): void;
}

/** Wait-queue callbacks of the kernel-side API (what ioeventfd / irqfd hook into). */
export interface EventFdWatcher {
  /** Called synchronously after a write/signal that leaves the counter > 0. */
  readable?(): void;
  /** Called synchronously on close (EPOLLHUP). */
  hangup?(): void;
}
