// The browser build's platform files (package.json "imports" pick them under the "browser"
// condition; apps/playground/test/browser-safe.test.ts checks the bundle has no Node import).
import { describe, expect, it } from 'vitest';
import { hostFdIsOpen, inspectEventFd } from './host-fds.browser.js';
import { nativeAvailable, sys } from './native.browser.js';

describe('browser build', () => {
  it('has no kernel eventfds: nativeAvailable is false, the syscalls are ENOSYS', () => {
    expect(nativeAvailable).toBe(false);
    expect(() => sys()).toThrow(expect.objectContaining({ code: 'ENOSYS' }));
  });

  it('has no descriptors: every fd is not open (EBADF), none can be adopted', () => {
    expect([0, 1, 2, 100].map(hostFdIsOpen)).toEqual([false, false, false, false]);
    expect(() => inspectEventFd(0)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'fromFd' }));
  });
});
