// The kernel side of an eventfd lookup (`eventfd_ctx_fdget`), shared by the
// software ioeventfd and irqfd so both apply the same EBADF/EINVAL rules.
import { errnoError } from '@rxvmm/errno';
import { hostFdIsOpen } from '#host-fds';
import { SoftEventFd } from './soft-event-fd.js';
import type { EventFdWatcher } from './types.js';

/**
 * The kernel side of an eventfd, what KVM's ioeventfd / irqfd hold (`struct eventfd_ctx`):
 * `SoftEventFd` provides it.
 */
export interface KernelEventFd {
  readonly fd: number;
  /** eventfd_signal(): adds `n` (default 1); never fails, saturates at 2^64-1; no-op after close. */
  signal(n?: bigint): void;
  /** eventfd_ctx_do_read(): takes the counter (1 in semaphore mode), 0n when it is 0. */
  drain(): bigint;
  /** A wait-queue entry: `readable()` when the counter becomes non-zero, `hangup()` on close; returns the function that removes it. */
  watch(listener: EventFdWatcher): () => void;
}

/**
 * `eventfd_ctx_fdget(fd)`: the eventfd behind a descriptor, or the kernel's
 * errno: `EBADF` when the fd is not open, `EINVAL` when it is open but not an
 * eventfd. Throws an ErrnoError.
 */
export type EventFdResolver = (fd: number) => KernelEventFd;

/**
 * The resolver SoftKvm uses: open SoftEventFds are eventfds; any other
 * open descriptor of this process (checked with fstat) is `EINVAL`, a kernel
 * eventfd included, since a pure-TypeScript kernel cannot see into one;
 * anything else is `EBADF` (in a browser, which has no descriptors, that is
 * every other fd).
 */
export function resolveSoftEventFd(fd: number): KernelEventFd {
  const efd = SoftEventFd.fromFd(fd);
  if (efd) return efd;
  if (!Number.isSafeInteger(fd) || fd < 0) throw errnoError('EBADF', `fd ${fd} is not open`);
  if (!hostFdIsOpen(fd)) throw errnoError('EBADF', `fd ${fd} is not open`);
  throw errnoError('EINVAL', `fd ${fd} is open but is not an (in-memory) eventfd`);
}
