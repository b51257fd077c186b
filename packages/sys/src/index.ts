/**
 * @rxvmm/sys: the thin native layer of rxvmm. Every function here is one
 * syscall (or one libuv call) with errors reported as Error objects whose
 * `.code` is the errno name. No logic lives here that TypeScript can do.
 */
import { native } from './binding.js';

export type { NativeBinding, PollerConstructor, PollerHandle } from './binding.js';

/** eventfd2(2). `initval` is a 32-bit unsigned integer; flags are `EFD_*`. Returns the fd. */
export const eventfd: (initval: number, flags: number) => number = native.eventfd;
/** read(2) of an 8-byte counter. Throws (e.g. `EAGAIN`) on failure. */
export const read8: (fd: number) => bigint = native.read8;
/** read(2) of an 8-byte counter; `null` instead of throwing `EAGAIN`. */
export const tryRead8: (fd: number) => bigint | null = native.tryRead8;
/** write(2) of an 8-byte counter. */
export const write8: (fd: number, value: bigint) => void = native.write8;
/** read(2) of `length` (0..64) bytes into a scratch buffer; returns the byte count. */
export const readRaw: (fd: number, length: number) => number = native.readRaw;
/** write(2) of the given bytes; returns the byte count. */
export const writeRaw: (fd: number, bytes: Uint8Array) => number = native.writeRaw;
/** close(2). */
export const close: (fd: number) => void = native.close;
/** poll(2) of one fd, blocking the calling thread up to `timeoutMs` (-1: forever). Returns revents, 0 on timeout. */
export const pollWait: (fd: number, events: number, timeoutMs: number) => number = native.pollWait;
/** libuv readiness polling of an fd on the calling thread's event loop. */
export const Poller = native.Poller;

export const { EFD_SEMAPHORE, EFD_NONBLOCK, EFD_CLOEXEC, POLLIN, POLLOUT, POLLERR, POLLHUP, POLLNVAL } =
  native.fdConstants;
export const { UV_READABLE, UV_WRITABLE, UV_DISCONNECT } = native.pollConstants;
