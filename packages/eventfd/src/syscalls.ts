// The part of @rxvmm/sys that EventFd calls, declared here by shape. @rxvmm/sys is an
// optional dependency: the published declarations must typecheck without it, so they
// never name its types. native.ts checks that the real module satisfies these.

/** A libuv readiness poller on one fd (sys's `PollerHandle`). */
export interface ReadinessPoller {
  /** Starts (or changes) polling; events are `UV_READABLE`/`UV_WRITABLE` bits. */
  start(events: number): void;
  /** Stops polling; the poller may be started again. */
  stop(): void;
  /** Stops and releases the libuv handle. */
  close(): void;
}

/** The eventfd syscalls, constants and poller of @rxvmm/sys. */
export interface EventFdSyscalls {
  eventfd(initval: number, flags: number): number;
  read8(fd: number): bigint;
  tryRead8(fd: number): bigint | null;
  write8(fd: number, value: bigint): void;
  close(fd: number): void;
  pollWait(fd: number, events: number, timeoutMs: number): number;
  setNonBlocking(fd: number, on: boolean): void;
  /** In counter mode a readable fd is read natively and the value passed to `callback`. */
  Poller: new (
    fd: number,
    callback: (error: NodeJS.ErrnoException | null, events: number, value?: bigint) => void,
    counterMode?: boolean,
  ) => ReadinessPoller;
  readonly EFD_SEMAPHORE: number;
  readonly EFD_NONBLOCK: number;
  readonly EFD_CLOEXEC: number;
  readonly POLLIN: number;
  readonly POLLOUT: number;
  readonly UV_READABLE: number;
  readonly UV_WRITABLE: number;
}
