// The process's own file descriptors, as the kernel sees them (Node on Linux): whether an fd
// is open, and whether it is an eventfd. The browser build has none (host-fds.browser.ts);
// package.json's "imports" (#host-fds) picks the file.
import { fstatSync, readFileSync, readlinkSync } from 'node:fs';
import { errnoError } from '@rxvmm/errno';

/** True when `fd` is an open descriptor of this process. */
export function hostFdIsOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

/** Checks that `fd` is an open eventfd of this process (via /proc) and reads its semaphore flag. */
export function inspectEventFd(fd: number): { semaphore: boolean | undefined } {
  let target: string;
  try {
    target = readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    throw errnoError('EBADF', `fd ${fd} is not open`, 'fromFd');
  }
  if (target !== 'anon_inode:[eventfd]')
    throw errnoError('EINVAL', `fd ${fd} is not an eventfd (${target})`, 'fromFd');
  let fdinfo = '';
  try {
    fdinfo = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  } catch {
    throw errnoError('EBADF', `fd ${fd} is not open`, 'fromFd');
  }
  // "eventfd-semaphore:" exists since Linux 6.4; older kernels do not say.
  const match = /^eventfd-semaphore:\s*(\d)\s*$/m.exec(fdinfo);
  return { semaphore: match === null ? undefined : match[1] === '1' };
}

/**
 * The counter of eventfd `fd`, read without consuming it: /proc/self/fdinfo's
 * `eventfd-count` (hex; every kernel since 2.6.x prints it). A read(2) would
 * take the count away from whoever polls the fd; this leaves it where it is.
 */
export function peekEventFdCount(fd: number): bigint {
  let fdinfo: string;
  try {
    fdinfo = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  } catch {
    throw errnoError('EBADF', `fd ${fd} is not open`, 'state');
  }
  const match = /^eventfd-count:\s*([0-9a-f]+)\s*$/m.exec(fdinfo);
  if (!match) throw errnoError('EINVAL', `fd ${fd} is not an eventfd (no eventfd-count in fdinfo)`, 'state');
  return BigInt(`0x${match[1]}`);
}
