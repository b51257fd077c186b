import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DiskError, prepareDisk } from './disk.js';
import { pathProblem } from './setup-error.js';

const dir = mkdtempSync(join(tmpdir(), 'rxvmm-disk-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('prepareDisk', () => {
  it('creates a sparse temporary image of the needed size and removes it on dispose', () => {
    const disk = prepareDisk(undefined, 8, 4096);
    expect(disk.temporary).toBe(true);
    expect(statSync(disk.path).size).toBe(8 * 4096);
    disk[Symbol.dispose]();
    expect(existsSync(disk.path)).toBe(false);
  });

  it('accepts a large enough user file and leaves it alone', () => {
    const file = join(dir, 'ok.img');
    writeFileSync(file, Buffer.alloc(8192));
    using disk = prepareDisk(file, 2, 4096);
    expect(disk).toMatchObject({ path: file, bytes: 8192, temporary: false });
  });

  it('names a missing disk', () => {
    expect(() => prepareDisk(join(dir, 'nope.img'), 1, 512)).toThrow(/does not exist/);
  });

  it('names a disk too small for the work', () => {
    const file = join(dir, 'small.img');
    writeFileSync(file, Buffer.alloc(1024));
    expect(() => prepareDisk(file, 4, 512)).toThrow(DiskError);
    expect(() => prepareDisk(file, 4, 512)).toThrow(/holds 1024 bytes.*need 2048/);
  });

  it('refuses a directory', () => {
    expect(() => prepareDisk(dir, 1, 512)).toThrow(/is not a file/);
  });

  it('a 0-byte image: the size it needs and how to grow it', () => {
    const file = join(dir, 'empty.img');
    writeFileSync(file, '');
    expect(() => prepareDisk(file, 4, 512)).toThrow(
      `disk ${file} holds 0 bytes, but 4 requests of 512 bytes need 2048: grow it (truncate -s 2048 ${file}) or ask for fewer requests`,
    );
  });

  describe('the temporary disk when TMPDIR is unusable: the path and the fix', () => {
    const saved = process.env.TMPDIR;
    afterAll(() => {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    });
    const fix = 'set TMPDIR to a writable directory (TMPDIR=/tmp), or give a disk image with --disk FILE';

    it.each([
      ['/nonexistent/rxvmm', 'does not exist', 'ENOENT'],
      ['/sys', 'is not writable by this user', 'EPERM'], // sysfs refuses new directories, even to root
    ])('TMPDIR=%s: %s', (tmp, problem, code) => {
      process.env.TMPDIR = tmp;
      expect(() => prepareDisk(undefined, 1, 512)).toThrow(
        `cannot create a temporary disk: the temporary directory ${tmp} (TMPDIR) ${problem}; ${fix}`,
      );
      expect(() => prepareDisk(undefined, 1, 512)).toThrow(expect.objectContaining({ code }));
    });

    it('TMPDIR naming a file: not a directory', () => {
      const file = join(dir, 'not-a-dir');
      writeFileSync(file, '');
      process.env.TMPDIR = file;
      expect(() => prepareDisk(undefined, 1, 512)).toThrow(
        /the temporary directory .*not-a-dir \(TMPDIR\) is not a directory/,
      );
    });
  });

  it('says what a permission or space problem is in words', () => {
    expect(pathProblem('EACCES')).toBe('is not writable by this user');
    expect(pathProblem('EROFS')).toBe('is on a read-only file system');
    expect(pathProblem('ENOSPC')).toBe('has no space left');
    expect(pathProblem('EWEIRD')).toBe('cannot be used (EWEIRD)');
  });
});
