/**
 * Why a snapshot file was refused. Every refusal is one of these, thrown
 * before anything was built from the file: `.code` is the errno name
 * (`EINVAL` malformed or hostile, `EIO` truncated or corrupted, `ENOTSUP`
 * another format version) and `.reason` a stable tag.
 */
export type SnapshotErrorReason =
  /** No "RXVMSNAP" magic: not a snapshot file. */
  | 'not-a-snapshot'
  /** A format version this code does not read. */
  | 'format-version'
  /** The file ends before its header says it does. */
  | 'truncated'
  /** Bytes past the end the header gives. */
  | 'trailing-data'
  /** A checksum does not match: the file was damaged after it was written. */
  | 'checksum'
  /** Fields that contradict each other or the limits: a file no writer makes. */
  | 'malformed';

const CODES: Record<SnapshotErrorReason, 'EINVAL' | 'EIO' | 'ENOTSUP'> = {
  'not-a-snapshot': 'EINVAL',
  'format-version': 'ENOTSUP',
  truncated: 'EIO',
  'trailing-data': 'EINVAL',
  checksum: 'EIO',
  malformed: 'EINVAL',
};

export class SnapshotError extends Error {
  readonly code: 'EINVAL' | 'EIO' | 'ENOTSUP';
  readonly reason: SnapshotErrorReason;
  constructor(reason: SnapshotErrorReason, message: string, path?: string) {
    const code = CODES[reason];
    super(`${code}: ${path ? `${path}: ` : ''}${message}`);
    this.name = 'SnapshotError';
    this.code = code;
    this.reason = reason;
  }
}
