/**
 * Typed errors of the ring layer. It carries an errno-style `.code`, like every
 * rxvmm error, so callers branch on `err.code` or `instanceof`.
 */

/**
 * The driver put something into a virtqueue that the spec forbids (or the
 * queue was configured with an impossible layout). A device reacts by setting
 * DEVICE_NEEDS_RESET; the queue object stays broken until it is rebuilt.
 * `reason` is a stable machine-readable tag (see {@link VirtqueueErrorReason}).
 */
export class VirtqueueError extends Error {
  readonly code: 'EINVAL' | 'EFAULT';
  readonly reason: VirtqueueErrorReason;
  constructor(code: 'EINVAL' | 'EFAULT', reason: VirtqueueErrorReason, message: string) {
    super(`${code}: ${message}`);
    this.name = 'VirtqueueError';
    this.code = code;
    this.reason = reason;
  }
}

/** Every hostile-input (and misconfiguration) case has its own tag. */
export type VirtqueueErrorReason =
  | 'head-out-of-range'
  | 'next-out-of-range'
  | 'chain-too-long'
  | 'nested-indirect'
  | 'indirect-with-next'
  | 'indirect-in-chain'
  | 'indirect-not-negotiated'
  | 'indirect-table-length'
  | 'descriptor-out-of-memory'
  | 'write-before-read'
  | 'avail-idx-jump'
  | 'bad-queue-size'
  | 'ring-misaligned'
  | 'ring-out-of-memory'
  | 'buffer-id-in-use'
  | 'bad-used-id'
  | 'bad-used-len'
  | 'queue-broken';
