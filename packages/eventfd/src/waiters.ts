// The queues of pending async calls, kept the same way by EventFd and
// SoftEventFd: FIFO, and all rejected at once on close (EBADF) or on a
// failed poll.
import { errnoError } from '@rxvmm/errno';

export interface ReadWaiter {
  resolve(value: bigint): void;
  reject(error: Error): void;
}

export interface WriteWaiter {
  value: bigint;
  resolve(): void;
  reject(error: Error): void;
}

/** The error of a call on a closed eventfd: `EBADF`, as the syscall on a closed fd gives. */
export function closedError(fd: number, syscall: string): Error {
  return errnoError('EBADF', `eventfd ${fd} is closed`, syscall);
}

/** Empties both queues, readers first, rejecting each waiter with `error(its syscall)`. */
export function rejectWaiters(
  reads: ReadWaiter[],
  writes: WriteWaiter[],
  error: (syscall: 'read' | 'write') => Error,
): void {
  for (const waiter of reads.splice(0)) waiter.reject(error('read'));
  for (const waiter of writes.splice(0)) waiter.reject(error('write'));
}
