// host-fds.ts for a browser build (package.json "imports", condition "browser"): a page has
// no file descriptors, so every fd that is not an SoftEventFd is not open (EBADF).
import { errnoError } from '@rxvmm/errno';

/** A page has no descriptors of its own. */
export function hostFdIsOpen(_fd: number): boolean {
  return false;
}

/** `EventFd.fromFd` in a page: nothing to adopt. */
export function inspectEventFd(fd: number): { semaphore: boolean | undefined } {
  throw errnoError('EBADF', `fd ${fd} is not open (a browser page has no file descriptors)`, 'fromFd');
}

/** `EventFd.state()` in a page: there is no kernel eventfd to read. */
export function peekEventFdCount(fd: number): bigint {
  throw errnoError('EBADF', `fd ${fd} is not open (a browser page has no file descriptors)`, 'state');
}
