/**
 * The demo's disk image: the user's file, checked before the guest starts, or
 * a sparse temporary image that is removed afterwards.
 */
import { accessSync, constants, mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathProblem, SetupError } from './setup-error.js';

export interface DiskImage extends Disposable {
  readonly path: string;
  readonly bytes: number;
  /** True when the demo created the image (and removes it on dispose). */
  readonly temporary: boolean;
}

/** A problem with the disk that the user can fix: printed as is, exit code 1. */
export class DiskError extends SetupError {
  override name = 'DiskError';
}

/** Where the temporary disk goes, and why: for messages. */
function tempDirName(base: string): string {
  return process.env.TMPDIR ? `${base} (TMPDIR)` : base;
}

/** Opens (or creates) the disk for `requests` requests of `blockSize` bytes. */
export function prepareDisk(path: string | undefined, requests: number, blockSize: number): DiskImage {
  const needed = requests * blockSize;
  if (path === undefined) {
    const base = tmpdir();
    const fix = 'set TMPDIR to a writable directory (TMPDIR=/tmp), or give a disk image with --disk FILE';
    let dir: string;
    try {
      dir = mkdtempSync(join(base, 'rxvmm-demo-'));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new DiskError(
        `cannot create a temporary disk: the temporary directory ${tempDirName(base)} ${pathProblem(code)}; ${fix}`,
        code,
      );
    }
    const file = join(dir, 'disk.img');
    try {
      writeFileSync(file, '');
      truncateSync(file, needed);
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      const code = (error as NodeJS.ErrnoException).code;
      throw new DiskError(
        `cannot create a temporary disk of ${needed} bytes in ${tempDirName(base)}: it ${pathProblem(code)}; ${fix}`,
        code,
      );
    }
    return {
      path: file,
      bytes: needed,
      temporary: true,
      [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  let size: number;
  try {
    const stat = statSync(path);
    if (!stat.isFile() && !stat.isBlockDevice())
      throw new DiskError(`disk ${path} is not a file (a regular file or a block device)`, 'EINVAL');
    size = stat.size;
    accessSync(path, constants.R_OK | constants.W_OK);
  } catch (error) {
    if (error instanceof DiskError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new DiskError(
        `disk ${path} does not exist: create it (truncate -s ${needed} ${path}) or leave out --disk for a temporary one`,
        code,
      );
    if (code === 'EACCES' || code === 'EPERM')
      throw new DiskError(
        `disk ${path} is not readable and writable by this user: fix its permissions (chmod u+rw ${path}) or use another file`,
        code,
      );
    throw new DiskError(`disk ${path}: ${(error as Error).message}`, code);
  }
  if (size < needed)
    throw new DiskError(
      `disk ${path} holds ${size} bytes, but ${requests} requests of ${blockSize} bytes need ${needed}: ` +
        `grow it (truncate -s ${needed} ${path}) or ask for fewer requests`,
      'EINVAL',
    );
  return { path, bytes: size, temporary: false, [Symbol.dispose]: () => {} };
}
