import { fstatSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as sys from './index.js';

const FIONREAD = 0x541b; // asm-generic/ioctls.h

describe('ioctl', () => {
  it('passes a Uint8Array as the argument pointer and returns the result (FIONREAD on a socket)', () => {
    const [a, b] = sys.unixSocketPair();
    try {
      sys.sendMsg(a, new Uint8Array([1, 2, 3, 4, 5]));
      const count = new Uint8Array(4);
      expect(sys.ioctl(b, FIONREAD, count)).toBe(0);
      expect(new DataView(count.buffer).getInt32(0, true)).toBe(5);
    } finally {
      sys.close(a);
      sys.close(b);
    }
  });

  it('throws errno errors: EBADF, ENOTTY; rejects other argument types', () => {
    expect(() => sys.ioctl(999_999, FIONREAD, new Uint8Array(4))).toThrow(
      expect.objectContaining({ code: 'EBADF', syscall: 'ioctl' }),
    );
    const efd = sys.eventfd(0, sys.EFD_CLOEXEC);
    try {
      expect(() => sys.ioctl(efd, 0xae00)).toThrow(expect.objectContaining({ code: 'ENOTTY' }));
      expect(() => sys.ioctlIntr(efd, 0xae00, 0)).toThrow(expect.objectContaining({ code: 'ENOTTY' }));
      expect(() => sys.ioctl(efd, 0xae00, 'x' as unknown as number)).toThrow(TypeError);
      expect(() => sys.ioctl(efd, 0xae00, new Uint16Array(2) as unknown as Uint8Array)).toThrow(TypeError);
    } finally {
      sys.close(efd);
    }
  });
});

describe('ioctl argument checks against the request encoding', () => {
  const KVM_GET_REGS = 0x8090ae81; // _IOR(KVMIO, 0x81, struct kvm_regs): the kernel writes 144 bytes

  it('refuses a buffer smaller than the size the request encodes (the kernel would write past it)', () => {
    const efd = sys.eventfd(0, sys.EFD_CLOEXEC);
    try {
      expect(() => sys.ioctl(efd, KVM_GET_REGS, new Uint8Array(4))).toThrow(TypeError);
      expect(() => sys.ioctlIntr(efd, KVM_GET_REGS, new Uint8Array(143))).toThrow(TypeError);
      // Large enough: reaches the kernel (an eventfd has no such ioctl).
      expect(() => sys.ioctl(efd, KVM_GET_REGS, new Uint8Array(144))).toThrow(
        expect.objectContaining({ code: 'ENOTTY' }),
      );
    } finally {
      sys.close(efd);
    }
  });

  it('refuses a non-zero number for a request that takes a pointer (it would be used as an address)', () => {
    const efd = sys.eventfd(0, sys.EFD_CLOEXEC);
    try {
      expect(() => sys.ioctl(efd, KVM_GET_REGS, 0x1000)).toThrow(TypeError);
      expect(() => sys.ioctl(efd, KVM_GET_REGS, 0)).toThrow(expect.objectContaining({ code: 'ENOTTY' }));
    } finally {
      sys.close(efd);
    }
  });
});

describe('memfd, ftruncate, mappings and detachBuffer', () => {
  it('sizes a memfd, maps it twice in one thread, and detaches a view before munmap', () => {
    const fd = sys.memfdCreate('rxvmm-sys-test', sys.MFD_CLOEXEC);
    sys.ftruncate(fd, 8192);
    expect(fstatSync(fd).size).toBe(8192);
    const address = sys.mmap(8192, sys.PROT_READ | sys.PROT_WRITE, sys.MAP_SHARED, fd, 0n);
    const first = sys.mappingBuffer(address, 8192);
    const second = sys.mappingBuffer(address, 8192);
    new Uint8Array(first)[100] = 42;
    expect(new Uint8Array(second)[100]).toBe(42);
    Atomics.store(new Int32Array(second), 10, 7);
    expect(Atomics.load(new Int32Array(first), 10)).toBe(7);
    const stale = new Uint8Array(second);
    sys.detachBuffer(first);
    sys.detachBuffer(second);
    expect(first.byteLength).toBe(0);
    // A view kept past the unmap reads as empty instead of faulting the process.
    expect(stale.length).toBe(0);
    expect(stale[100]).toBeUndefined();
    sys.munmap(address, 8192);
    sys.close(fd);
    expect(() => sys.ftruncate(fd, 10)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });
});
