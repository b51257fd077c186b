// The raw eventfd syscalls: flags, 8-byte read/write, the kernel's errnos as `.code`.
import { describe, expect, it } from 'vitest';
import {
  close,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  EFD_SEMAPHORE,
  eventfd,
  POLLIN,
  POLLOUT,
  pollWait,
  read8,
  readRaw,
  tryRead8,
  write8,
  writeRaw,
} from './index.js';

const code = (c: string) => expect.objectContaining({ code: c });

function withFd(flags: number, initval: number, body: (fd: number) => void): void {
  const fd = eventfd(initval, flags | EFD_CLOEXEC);
  try {
    body(fd);
  } finally {
    close(fd);
  }
}

describe('eventfd(2)', () => {
  it('creates an fd with the initial value; read returns and zeroes it', () => {
    withFd(EFD_NONBLOCK, 42, (fd) => {
      expect(fd).toBeGreaterThanOrEqual(0);
      expect(read8(fd)).toBe(42n);
      expect(() => read8(fd)).toThrow(code('EAGAIN'));
      expect(tryRead8(fd)).toBeNull();
    });
  });

  it('rejects unknown flags with EINVAL and initval outside u32 with EINVAL', () => {
    expect(() => eventfd(0, 0x40)).toThrow(code('EINVAL'));
    expect(() => eventfd(-1, 0)).toThrow(code('EINVAL'));
    expect(() => eventfd(2 ** 32, 0)).toThrow(code('EINVAL'));
  });

  it('reports errors as Error objects with code, errno and syscall, like fs errors', () => {
    withFd(EFD_NONBLOCK, 0, (fd) => {
      try {
        read8(fd);
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(Error);
        expect(error).toMatchObject({ code: 'EAGAIN', errno: -11, syscall: 'read' });
      }
    });
  });

  it('write adds; 2^64-1 is EINVAL; passing 2^64-2 is EAGAIN; 0 at the maximum succeeds', () => {
    withFd(EFD_NONBLOCK, 0, (fd) => {
      write8(fd, 5n);
      write8(fd, 6n);
      expect(read8(fd)).toBe(11n);
      expect(() => write8(fd, 0xffff_ffff_ffff_ffffn)).toThrow(code('EINVAL'));
      write8(fd, 0xffff_ffff_ffff_fffen);
      expect(() => write8(fd, 1n)).toThrow(code('EAGAIN'));
      write8(fd, 0n);
      expect(read8(fd)).toBe(0xffff_ffff_ffff_fffen);
    });
  });

  it('semaphore mode reads 1 and decrements', () => {
    withFd(EFD_NONBLOCK | EFD_SEMAPHORE, 2, (fd) => {
      expect(read8(fd)).toBe(1n);
      expect(read8(fd)).toBe(1n);
      expect(tryRead8(fd)).toBeNull();
    });
  });

  it('readRaw / writeRaw show the kernel EINVAL for buffers under 8 bytes', () => {
    withFd(EFD_NONBLOCK, 1, (fd) => {
      expect(() => readRaw(fd, 7)).toThrow(code('EINVAL'));
      expect(() => writeRaw(fd, new Uint8Array(4))).toThrow(code('EINVAL'));
      expect(readRaw(fd, 16)).toBe(8);
      expect(writeRaw(fd, new Uint8Array([3, 0, 0, 0, 0, 0, 0, 0]))).toBe(8);
      expect(read8(fd)).toBe(3n);
    });
  });

  it('pollWait reports readiness and times out with 0', () => {
    withFd(EFD_NONBLOCK, 0, (fd) => {
      expect(pollWait(fd, POLLIN, 0)).toBe(0);
      expect(pollWait(fd, POLLOUT, 0)).toBe(POLLOUT);
      write8(fd, 1n);
      expect(pollWait(fd, POLLIN, 0) & POLLIN).toBe(POLLIN);
    });
  });

  it('use after close is EBADF', () => {
    const fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    close(fd);
    expect(() => read8(fd)).toThrow(code('EBADF'));
    expect(() => write8(fd, 1n)).toThrow(code('EBADF'));
    expect(() => close(fd)).toThrow(code('EBADF'));
  });

  it('argument types are checked: TypeError for wrong types, RangeError for a non-u64 bigint', () => {
    expect(() => eventfd('1' as unknown as number, 0)).toThrow(TypeError);
    expect(() => read8(undefined as unknown as number)).toThrow(TypeError);
    expect(() => write8(0, 1 as unknown as bigint)).toThrow(TypeError);
    withFd(EFD_NONBLOCK, 0, (fd) => {
      expect(() => write8(fd, -1n)).toThrow(RangeError);
      expect(() => write8(fd, 1n << 64n)).toThrow(RangeError);
    });
  });
});
