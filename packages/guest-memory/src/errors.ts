/**
 * A guest-physical access that is not inside guest memory (or wraps 2^64).
 * Carries `.code = 'EFAULT'`, like every rxvmm error, so callers branch on
 * `err.code` or `instanceof`.
 */
export class GuestMemoryError extends Error {
  readonly code = 'EFAULT' as const;
  constructor(message: string) {
    super(`EFAULT: ${message}`);
    this.name = 'GuestMemoryError';
  }
}
