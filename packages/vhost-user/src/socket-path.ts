/**
 * The filesystem side of a listening Unix socket. Before bind, an existing path
 * is removed only when it is a stale socket (a connect attempt is refused: no
 * process listens on it); anything else there (a file, a directory, a symlink,
 * a live socket) is an error and is left untouched. At shutdown the socket is
 * removed only while the path is still the inode this process bound, so a
 * newer back-end's socket at the same path survives an older one's exit.
 *
 * Every error here names the path and carries it as `.path` (like Node's fs
 * errors), with the errno name as `.code`.
 */
import { type BigIntStats, lstatSync, readlinkSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { getSystemErrorMap } from 'node:util';
import { type ErrnoCode, type ErrnoError, errnoError, isErrno } from '@rxvmm/errno';
import { close, unixBind, unixConnect, unixListen, unixSocket } from '@rxvmm/sys';

/** A socket this process bound and listens on, with the identity of its path right after bind. */
export interface BoundSocket {
  fd: number;
  path: string;
  dev: bigint;
  ino: bigint;
}

/** An error about the socket path: `.path` is the path. */
export type SocketPathError = ErrnoError & { path: string };

function pathError(code: string, path: string, message: string): SocketPathError {
  // Codes passed through from the kernel may be any errno name, not only rxvmm's own list.
  return Object.assign(errnoError(code as ErrnoCode, message), { path });
}

/** The kernel's words for an error (`no such file or directory`), without Node's `ENOENT: ..., lstat '...'` wrapping. */
function reason(error: unknown): string {
  const errno = (error as NodeJS.ErrnoException).errno;
  return (errno !== undefined && getSystemErrorMap().get(errno)?.[1]) || (error as Error).message;
}

function lstatOrNull(path: string): BigIntStats | null {
  try {
    return lstatSync(path, { bigint: true });
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return null;
    throw pathError((error as ErrnoError).code, path, `cannot use socket path ${path}: ${reason(error)}`);
  }
}

/** "a regular file (512 bytes)", "a directory", "a symbolic link to x", ... */
function describe(st: BigIntStats, path: string): string {
  if (st.isFile()) return `a regular file (${st.size} bytes)`;
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) {
    let target = '?';
    try {
      target = readlinkSync(path);
    } catch {}
    return `a symbolic link to ${target}`;
  }
  if (st.isBlockDevice()) return 'a block device';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isFIFO()) return 'a FIFO';
  return 'not a socket';
}

/**
 * One non-blocking connect: 'refused' (ECONNREFUSED) is a stale socket nobody
 * listens on. A listener that is there sees a connection that ends at once.
 */
function probe(path: string): 'listening' | 'refused' | 'gone' {
  const fd = unixSocket(true);
  try {
    unixConnect(fd, path);
    return 'listening';
  } catch (error) {
    if (isErrno(error, 'ECONNREFUSED')) return 'refused';
    if (isErrno(error, 'ENOENT')) return 'gone';
    if (isErrno(error, 'EAGAIN')) return 'listening'; // its backlog is full
    throw pathError(
      (error as ErrnoError).code,
      path,
      `socket path ${path} is a socket that cannot be probed (${reason(error)}): refusing to replace it`,
    );
  } finally {
    close(fd);
  }
}

/**
 * Makes `path` free for bind: nothing there, or a stale socket (removed here).
 * Throws EEXIST for anything that is not a socket, EADDRINUSE for a socket a
 * process listens on, and the probe's error for a socket that cannot be probed.
 */
export function removeStaleSocket(path: string): void {
  const st = lstatOrNull(path);
  if (st === null) return; // nothing there (a missing directory is reported by bind, with the path)
  if (!st.isSocket())
    throw pathError(
      'EEXIST',
      path,
      `socket path ${path} is ${describe(st, path)}, not a socket: refusing to replace it`,
    );
  const state = probe(path);
  if (state === 'gone') return; // removed meanwhile: the path is free
  if (state === 'listening')
    throw pathError(
      'EADDRINUSE',
      path,
      `socket path ${path} is a live socket: another process is listening on it`,
    );
  // Refused: nobody listens. Remove it only if it is still the socket that was probed.
  const now = lstatOrNull(path);
  if (now === null) return;
  if (now.dev !== st.dev || now.ino !== st.ino)
    throw pathError(
      'EADDRINUSE',
      path,
      `socket path ${path} was replaced by another process while it was checked`,
    );
  try {
    unlinkSync(path);
  } catch (error) {
    if (!isErrno(error, 'ENOENT'))
      throw pathError(
        (error as ErrnoError).code,
        path,
        `cannot remove stale socket ${path}: ${reason(error)}`,
      );
  }
}

/** Removes a stale socket at `path` if there is one, then binds and listens there (non-blocking, close-on-exec). */
export function listenOnPath(path: string, backlog: number): BoundSocket {
  removeStaleSocket(path);
  const fd = unixSocket(true);
  try {
    try {
      unixBind(fd, path);
    } catch (error) {
      throw bindError(path, error);
    }
    const st = lstatOrNull(path);
    if (st === null) throw pathError('ENOENT', path, `socket ${path} was removed right after bind`);
    const bound = { fd, path, dev: st.dev, ino: st.ino };
    try {
      unixListen(fd, backlog);
    } catch (error) {
      removeBoundSocket(bound);
      throw pathError((error as ErrnoError).code, path, `cannot listen on ${path}: ${reason(error)}`);
    }
    return bound;
  } catch (error) {
    close(fd);
    throw error;
  }
}

function bindError(path: string, error: unknown): SocketPathError {
  const code = (error as ErrnoError).code;
  if (code === 'ENOENT')
    return pathError(code, path, `cannot bind ${path}: directory ${dirname(path)} does not exist`);
  if (code === 'EADDRINUSE')
    return pathError(
      code,
      path,
      `cannot bind ${path}: another process created it after the stale-socket check`,
    );
  return pathError(code, path, `cannot bind ${path}: ${reason(error)}`);
}

/**
 * Unlinks the bound socket's path if it is still that socket (same device and
 * inode as right after bind). 'replaced' when something else is there now
 * (left alone), 'gone' when nothing is.
 */
export function removeBoundSocket(bound: BoundSocket): 'removed' | 'replaced' | 'gone' {
  let st: BigIntStats;
  try {
    st = lstatSync(bound.path, { bigint: true });
  } catch {
    return 'gone';
  }
  if (!st.isSocket() || st.dev !== bound.dev || st.ino !== bound.ino) return 'replaced';
  try {
    unlinkSync(bound.path);
    return 'removed';
  } catch {
    return 'gone';
  }
}
