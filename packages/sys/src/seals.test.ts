import { ftruncateSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  addSeals,
  close,
  eventfd,
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  F_SEAL_WRITE,
  getSeals,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  memfdCreate,
} from './index.js';

const opened: number[] = [];
afterEach(() => {
  for (const fd of opened.splice(0)) close(fd);
});

function memfd(flags: number): number {
  const fd = memfdCreate('rxvmm-seals-test', flags);
  opened.push(fd);
  return fd;
}

describe('file seals', () => {
  it('has the kernel values of <linux/fcntl.h>', () => {
    expect([F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE]).toEqual([1, 2, 4, 8]);
  });

  it('reads and adds seals of a memfd made with MFD_ALLOW_SEALING; a shrink is then EPERM', () => {
    const fd = memfd(MFD_CLOEXEC | MFD_ALLOW_SEALING);
    ftruncateSync(fd, 8192);
    expect(getSeals(fd)).toBe(0);
    addSeals(fd, F_SEAL_SHRINK | F_SEAL_GROW);
    expect(getSeals(fd)).toBe(F_SEAL_SHRINK | F_SEAL_GROW);
    expect(() => ftruncateSync(fd, 4096)).toThrow(expect.objectContaining({ code: 'EPERM' }));
  });

  it('a memfd without MFD_ALLOW_SEALING is born with F_SEAL_SEAL and refuses new seals', () => {
    const fd = memfd(MFD_CLOEXEC);
    expect(getSeals(fd)).toBe(F_SEAL_SEAL);
    expect(() => addSeals(fd, F_SEAL_SHRINK)).toThrow(
      expect.objectContaining({ code: 'EPERM', syscall: 'fcntl(F_ADD_SEALS)' }),
    );
  });

  it('a file that cannot carry seals (an eventfd) is EINVAL', () => {
    const efd = eventfd(0, 0);
    opened.push(efd);
    expect(() => getSeals(efd)).toThrow(
      expect.objectContaining({ code: 'EINVAL', syscall: 'fcntl(F_GET_SEALS)' }),
    );
  });

  it('throws TypeError for a non-number fd', () => {
    expect(() => getSeals('3' as unknown as number)).toThrow(TypeError);
  });
});
