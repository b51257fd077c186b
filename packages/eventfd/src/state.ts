/**
 * An eventfd's counter as plain, versioned, JSON-serialisable data: what a
 * snapshot keeps of a kick or call eventfd (a doorbell written and not yet
 * consumed is a count > 0). The descriptor itself cannot be saved; a restore
 * makes a new eventfd holding the same count.
 */
import { errnoError } from '@rxvmm/errno';
import { U64_MAX } from './constants.js';

/** The `version` this code writes and reads. */
export const EVENTFD_STATE_VERSION = 1;

/** `EventFd.state()` / `SoftEventFd.state()`. */
export interface EventFdState {
  version: typeof EVENTFD_STATE_VERSION;
  /** The counter, a decimal string (0 to 2^64-1). */
  count: string;
  /** EFD_SEMAPHORE. */
  semaphore: boolean;
}

/** Checks a state read from a file: anything `state()` could not have written is `EINVAL`. */
export function checkEventFdState(state: unknown): { count: bigint; semaphore: boolean } {
  if (typeof state !== 'object' || state === null) throw bad('not an object');
  const s = state as Record<string, unknown>;
  if (s.version !== EVENTFD_STATE_VERSION)
    throw bad(`version ${String(s.version)} (this code reads version ${EVENTFD_STATE_VERSION})`);
  if (typeof s.count !== 'string' || !/^(0|[1-9][0-9]{0,19})$/.test(s.count) || BigInt(s.count) > U64_MAX)
    throw bad(`count ${JSON.stringify(s.count)} is not a u64 decimal string`);
  if (typeof s.semaphore !== 'boolean') throw bad('semaphore is not a boolean');
  return { count: BigInt(s.count), semaphore: s.semaphore };
}

function bad(why: string): Error {
  return errnoError('EINVAL', `bad eventfd state: ${why}`);
}
