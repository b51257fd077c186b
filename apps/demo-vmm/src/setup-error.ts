/**
 * A problem with the user's machine or files that the user can fix: a missing or too small disk,
 * a temporary directory that is not there or not writable, no back-end at a vhost-user socket.
 * The message names the path and the fix; the CLI prints it as is, exit code 1.
 */
export class SetupError extends Error {
  override name = 'SetupError';
  /** The errno name behind it, when there is one (for --json's `code`). */
  readonly code: string | undefined;

  constructor(message: string, code?: string) {
    super(message);
    this.code = code;
  }
}

/** Why `path` could not be used, in words, from a Node fs error's code. */
export function pathProblem(code: string | undefined): string {
  switch (code) {
    case 'ENOENT':
      return 'does not exist';
    case 'ENOTDIR':
      return 'is not a directory (or a part of its path is not)';
    case 'EACCES':
    case 'EPERM':
      return 'is not writable by this user';
    case 'EROFS':
      return 'is on a read-only file system';
    case 'ENOSPC':
    case 'EDQUOT':
      return 'has no space left';
    default:
      return `cannot be used (${code ?? 'unknown error'})`;
  }
}
