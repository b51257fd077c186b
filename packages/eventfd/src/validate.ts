// Argument validation shared by EventFd and SoftEventFd so both reject the
// same inputs the same way. The rule (documented in the README):
//   - a value of the wrong JavaScript type  -> TypeError (a programming error);
//   - the right type but not representable in the kernel's argument
//     (negative, not an integer, too large)  -> Error with code EINVAL.
import { errnoError } from '@rxvmm/errno';
import { INITVAL_MAX, U64_MAX } from './constants.js';
import type { EventFdOptions } from './types.js';

export interface ParsedOptions {
  initval: bigint;
  semaphore: boolean;
  nonblock: boolean;
}

function optionalBoolean(value: unknown, name: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean`);
  return value;
}

/** Validates the constructor options. */
export function parseOptions(options: EventFdOptions | undefined): ParsedOptions {
  if (options === undefined) return { initval: 0n, semaphore: false, nonblock: false };
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const { initval = 0 } = options;
  let initial: bigint;
  if (typeof initval === 'number') {
    if (!Number.isInteger(initval))
      throw errnoError('EINVAL', `initval ${initval} is not an integer`, 'eventfd');
    initial = BigInt(initval);
  } else if (typeof initval === 'bigint') {
    initial = initval;
  } else {
    throw new TypeError('initval must be a number or a bigint');
  }
  if (initial < 0n || initial > INITVAL_MAX) {
    throw errnoError('EINVAL', `initval ${initial} is outside 0..2^32-1`, 'eventfd');
  }
  return {
    initval: initial,
    semaphore: optionalBoolean(options.semaphore, 'semaphore'),
    nonblock: optionalBoolean(options.nonblock, 'nonblock'),
  };
}

/** write(value) arguments: must be a bigint (TypeError otherwise). */
export function checkBigint(value: unknown, what: string): asserts value is bigint {
  if (typeof value !== 'bigint') throw new TypeError(`${what} must be a bigint`);
}

/** A bigint that fits the kernel's u64 (EINVAL otherwise). Called after the EBADF check. */
export function checkU64(value: bigint, syscall: string): void {
  if (value < 0n || value > U64_MAX) {
    throw errnoError('EINVAL', `${value} is not an unsigned 64-bit value`, syscall);
  }
}
