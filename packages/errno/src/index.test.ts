import { describe, expect, it } from 'vitest';
import { errnoError, isErrno } from './index.js';

describe('errnoError', () => {
  it('is an Error with the errno name as .code, like Node fs errors', () => {
    const error = errnoError('EINVAL', 'bad length', 'ioctl');
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe('EINVAL');
    expect(error.syscall).toBe('ioctl');
    expect(error.message).toBe('EINVAL: bad length');
  });

  it('isErrno recognises codes, including Node and native errors', () => {
    expect(isErrno(errnoError('EEXIST', 'x'), 'EEXIST')).toBe(true);
    expect(isErrno(errnoError('EEXIST', 'x'), 'ENOENT')).toBe(false);
    expect(isErrno(Object.assign(new Error('fs'), { code: 'ENOENT' }))).toBe(true);
    expect(isErrno(new Error('plain'))).toBe(false);
    expect(isErrno('EINVAL')).toBe(false);
  });
});
