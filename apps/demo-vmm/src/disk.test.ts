import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DiskError, prepareDisk } from './disk.js';

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
});
