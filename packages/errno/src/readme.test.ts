// The README example, checked.
import { expect, it } from 'vitest';
import { errnoError, isErrno } from './index.js';

it('README: errnoError and isErrno', () => {
  const err = errnoError('EINVAL', 'len must be 0, 1, 2, 4 or 8', 'KVM_IOEVENTFD');
  expect(err.message).toBe('EINVAL: len must be 0, 1, 2, 4 or 8');
  expect([err.code, err.syscall]).toEqual(['EINVAL', 'KVM_IOEVENTFD']);

  const log: string[] = [];
  try {
    throw errnoError('EAGAIN', 'counter is zero');
  } catch (e) {
    if (isErrno(e, 'EAGAIN')) log.push('try again later');
  }
  expect(log).toEqual(['try again later']);
});
