import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  detachBuffer,
  IOV_MAX,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  mappingBuffer,
  mmap,
  munmap,
  PROT_READ,
  PROT_WRITE,
  preadvRanges,
  pwritevRanges,
} from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'rxvmm-ranges-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A file holding bytes 0, 1, 2, ... (mod 251) and an fd open on it read-write. */
function patternFile(size: number): { path: string; fd: number } {
  const path = join(dir, `f${Math.random().toString(36).slice(2)}`);
  writeFileSync(
    path,
    Uint8Array.from({ length: size }, (_, i) => i % 251),
  );
  return { path, fd: openSync(path, 'r+') };
}

const ranges = (...pairs: number[]) => Float64Array.from(pairs);

describe('preadvRanges / pwritevRanges', () => {
  it('reads a file position into several ranges of one buffer, in order, in one call', () => {
    const { fd } = patternFile(4096);
    try {
      const memory = new Uint8Array(64).fill(0xee);
      // file bytes 100..109 go to memory[40..44), [2..8)
      expect(preadvRanges(fd, memory, ranges(40, 4, 2, 6, 99, 99), 2, 100)).toBe(10);
      expect([...memory.subarray(40, 44)]).toEqual([100, 101, 102, 103]);
      expect([...memory.subarray(2, 8)]).toEqual([104, 105, 106, 107, 108, 109]);
      expect(memory[0]).toBe(0xee);
      expect(memory[8]).toBe(0xee);
      expect(memory[44]).toBe(0xee);
    } finally {
      closeSync(fd);
    }
  });

  it('honours the view: offsets count from the Uint8Array, not its ArrayBuffer', () => {
    const { fd } = patternFile(512);
    try {
      const backing = new Uint8Array(32);
      const memory = backing.subarray(16, 24);
      expect(preadvRanges(fd, memory, ranges(0, 8), 1, 5)).toBe(8);
      expect([...backing.subarray(16, 24)]).toEqual([5, 6, 7, 8, 9, 10, 11, 12]);
      expect(backing.subarray(0, 16).every((b) => b === 0)).toBe(true);
      // The whole view is fine; one byte more is outside it.
      expect(() => preadvRanges(fd, memory, ranges(1, 8), 1, 0)).toThrow(
        expect.objectContaining({ code: 'EFAULT' }),
      );
    } finally {
      closeSync(fd);
    }
  });

  it('takes a view of a SharedArrayBuffer (guest RAM shared with vCPU threads)', () => {
    const { fd } = patternFile(512);
    try {
      const memory = new Uint8Array(new SharedArrayBuffer(64), 8, 32);
      expect(preadvRanges(fd, memory, ranges(4, 4), 1, 10)).toBe(4);
      expect([...memory.subarray(4, 8)]).toEqual([10, 11, 12, 13]);
      expect(() => preadvRanges(fd, memory, ranges(30, 4), 1, 0)).toThrow(
        expect.objectContaining({ code: 'EFAULT' }),
      );
    } finally {
      closeSync(fd);
    }
  });

  it('writes ranges to the file at a position and returns the count', () => {
    const { path, fd } = patternFile(64);
    try {
      const memory = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(pwritevRanges(fd, memory, ranges(6, 2, 0, 3), 2, 10)).toBe(5);
      const file = readFileSync(path);
      expect([...file.subarray(8, 17)]).toEqual([8, 9, 7, 8, 1, 2, 3, 15, 16]);
    } finally {
      closeSync(fd);
    }
  });

  it('is short at the end of the file, and 0 past it', () => {
    const { fd } = patternFile(100);
    try {
      const memory = new Uint8Array(64);
      expect(preadvRanges(fd, memory, ranges(0, 32, 32, 32), 2, 80)).toBe(20);
      expect(preadvRanges(fd, memory, ranges(0, 32), 1, 100)).toBe(0);
      expect(preadvRanges(fd, memory, ranges(), 0, 0)).toBe(0);
    } finally {
      closeSync(fd);
    }
  });

  it('moves bytes straight to and from a mapping (zero copy)', () => {
    const { path, fd } = patternFile(8192);
    const address = mmap(8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0n);
    const buffer = mappingBuffer(address, 8192);
    try {
      const memory = new Uint8Array(buffer);
      expect(preadvRanges(fd, memory, ranges(4096, 4096, 0, 4096), 2, 0)).toBe(8192);
      expect(memory[4096 + 250]).toBe(250);
      expect(memory[0]).toBe(4096 % 251);
      memory.fill(7, 0, 16);
      expect(pwritevRanges(fd, memory, ranges(0, 16), 1, 0)).toBe(16);
      expect(readFileSync(path).subarray(0, 17)).toEqual(Buffer.from([...Array(16).fill(7), 16]));
      // An unmapped region's buffer, once detached, has no bytes: every range is outside it.
      detachBuffer(buffer);
      expect(() => preadvRanges(fd, memory, ranges(0, 1), 1, 0)).toThrow(
        expect.objectContaining({ code: 'EFAULT' }),
      );
      expect(() => pwritevRanges(fd, memory, ranges(0, 0), 1, 0)).not.toThrow();
    } finally {
      munmap(address, 8192);
      closeSync(fd);
    }
  });

  it('refuses hostile ranges before any byte moves: EFAULT outside the buffer, EINVAL for bad numbers', () => {
    const { path, fd } = patternFile(256);
    try {
      const memory = new Uint8Array(64);
      const cases: [Float64Array, number, number, string][] = [
        [ranges(0, 65), 1, 0, 'EFAULT'],
        [ranges(64, 1), 1, 0, 'EFAULT'],
        [ranges(0, 8, 60, 8), 2, 0, 'EFAULT'], // the second range, after a good one
        [ranges(2 ** 53 - 1, 2), 1, 0, 'EFAULT'],
        [ranges(2 ** 52, 2 ** 52), 1, 0, 'EFAULT'],
        [ranges(-1, 4), 1, 0, 'EINVAL'],
        [ranges(0, -4), 1, 0, 'EINVAL'],
        [ranges(0.5, 4), 1, 0, 'EINVAL'],
        [ranges(Number.NaN, 4), 1, 0, 'EINVAL'],
        [ranges(0, Number.POSITIVE_INFINITY), 1, 0, 'EINVAL'],
        [ranges(2 ** 53, 0), 1, 0, 'EINVAL'],
        [ranges(0, 4), 2, 0, 'EINVAL'], // more ranges than the array holds
        [ranges(0, 4), -1, 0, 'EINVAL'],
        [ranges(0, 4), 1.5, 0, 'EINVAL'],
        [new Float64Array(2 * (IOV_MAX + 1)), IOV_MAX + 1, 0, 'EINVAL'],
        [ranges(0, 4), 1, -1, 'EINVAL'],
        [ranges(0, 4), 1, 2 ** 53, 'EINVAL'],
        [ranges(0, 4), 1, Number.NaN, 'EINVAL'],
      ];
      for (const [r, count, position, code] of cases) {
        memory.fill(0xee);
        expect(
          () => preadvRanges(fd, memory, r, count, position),
          `${[...r.subarray(0, 4)]} ×${count} @${position}`,
        ).toThrow(expect.objectContaining({ code }));
        expect(memory.every((b) => b === 0xee)).toBe(true);
        expect(() => pwritevRanges(fd, memory, r, count, position)).toThrow(
          expect.objectContaining({ code }),
        );
      }
      expect(readFileSync(path)).toEqual(Buffer.from(Uint8Array.from({ length: 256 }, (_, i) => i % 251)));
    } finally {
      closeSync(fd);
    }
  });

  it('takes IOV_MAX ranges at most, and reports the kernel errors by name', () => {
    const { fd } = patternFile(2048);
    try {
      expect(IOV_MAX).toBe(1024);
      const memory = new Uint8Array(2048);
      const many = new Float64Array(2 * IOV_MAX);
      for (let i = 0; i < IOV_MAX; i++) many.set([2 * (IOV_MAX - 1 - i), 2], 2 * i); // reversed pairs of bytes
      expect(preadvRanges(fd, memory, many, IOV_MAX, 0)).toBe(2048);
      expect([memory[2046], memory[2047], memory[0]]).toEqual([0, 1, 2046 % 251]);
      expect(() => preadvRanges(-1, memory, ranges(0, 1), 1, 0)).toThrow(
        expect.objectContaining({ code: 'EBADF' }),
      );
      expect(() => preadvRanges(2 ** 31, memory, ranges(0, 1), 1, 0)).toThrow(
        expect.objectContaining({ code: 'EBADF' }),
      );
      const readOnly = openSync(join(dir, 'ro'), 'w+');
      closeSync(readOnly);
      const ro = openSync(join(dir, 'ro'), 'r');
      try {
        expect(() => pwritevRanges(ro, memory, ranges(0, 1), 1, 0)).toThrow(
          expect.objectContaining({ code: 'EBADF', syscall: 'pwritev' }),
        );
      } finally {
        closeSync(ro);
      }
    } finally {
      closeSync(fd);
    }
  });

  it('throws a TypeError for arguments of the wrong kind', () => {
    const call = preadvRanges as unknown as (...args: unknown[]) => number;
    expect(() => call(0, new Uint16Array(4), ranges(0, 1), 1, 0)).toThrow(TypeError);
    expect(() => call(0, new Uint8Array(4), new Float32Array(2), 1, 0)).toThrow(TypeError);
    expect(() => call(0, new Uint8Array(4), [0, 1], 1, 0)).toThrow(TypeError);
    expect(() => call(0, new Uint8Array(4), ranges(0, 1), '1', 0)).toThrow(TypeError);
    expect(() => call(0, new Uint8Array(4), ranges(0, 1), 1)).toThrow(TypeError);
  });
});
