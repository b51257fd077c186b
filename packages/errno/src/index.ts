/**
 * Errors in rxvmm look like Node's own fs errors: an `Error` whose `.code` is
 * the errno name (`EINVAL`, `EBADF`, ...), so callers branch on `err.code`.
 */

/** The errno names rxvmm's packages report. */
export type ErrnoCode =
  | 'EAGAIN'
  | 'EBADF'
  | 'EBUSY'
  | 'EEXIST'
  | 'EFAULT'
  | 'EINTR'
  | 'EINVAL'
  | 'EIO'
  | 'ENOENT'
  | 'ENOMEM'
  | 'ENOSPC'
  | 'ENOSYS'
  | 'ENOTSUP'
  | 'ENXIO'
  | 'EPERM'
  | 'EACCES'
  | 'E2BIG'
  | 'EPROTO'
  | 'ERANGE'
  | 'EMSGSIZE'
  | 'ENOTCONN'
  | 'EPIPE'
  | 'EADDRINUSE'
  | 'ECONNREFUSED';

/** An Error carrying an errno name, as thrown by every rxvmm package. */
export interface ErrnoError extends Error {
  code: ErrnoCode | (string & {});
  syscall?: string;
}

/** Creates `Error(message)` with `.code = code` (and `.syscall` when given). */
export function errnoError(code: ErrnoCode, message: string, syscall?: string): ErrnoError {
  const error = new Error(`${code}: ${message}`) as ErrnoError;
  error.code = code;
  if (syscall !== undefined) error.syscall = syscall;
  return error;
}

/** True when `error` is an Error whose `.code` is `code` (or any errno name when `code` is omitted). */
export function isErrno(error: unknown, code?: ErrnoCode): error is ErrnoError {
  if (!(error instanceof Error) || typeof (error as ErrnoError).code !== 'string') return false;
  return code === undefined || (error as ErrnoError).code === code;
}

export { type DebugLog, debug, debugEnabled } from './debug.js';
export { nextTurn } from './next-turn.js';
