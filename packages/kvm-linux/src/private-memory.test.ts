import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openKvm } from './kvm.js';
import { kvmAvailable } from './test-support/availability.js';

const MiB = 1 << 20;
const dir = mkdtempSync(join(tmpdir(), 'rxvmm-private-memory-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A file with one page of header, then `size` bytes of pattern (a snapshot's layout in small). */
function memoryFile(size: number): { path: string; pattern: Uint8Array } {
  const pattern = new Uint8Array(size).map((_, i) => (i * 7 + (i >> 12)) & 0xff);
  const path = join(dir, `memory-${size}-${Math.random().toString(16).slice(2)}`);
  const file = new Uint8Array(4096 + size);
  file.fill(0xee, 0, 4096);
  file.set(pattern, 4096);
  writeFileSync(path, file);
  return { path, pattern };
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const mapped = (path: string) =>
  readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((line) => line.endsWith(path));

describe.skipIf(!kvmAvailable)('LinuxVm memory mapped privately from a file (lazy restore)', () => {
  it('reads the file, keeps writes private, is not shareable, and unmaps on release', () => {
    const { path, pattern } = memoryFile(2 * MiB);
    const before = sha256(path);
    const fd = openSync(path, 'r');
    using kvm = openKvm();
    const vm = kvm.createVm();
    const region = vm.setMemoryRegion({
      slot: 0,
      guestPhysAddr: 0n,
      size: 2 * MiB,
      source: { fd, offset: 4096, private: true },
    });
    closeSync(fd); // the mapping keeps the file
    if (!region) throw new Error('no region');
    expect(region.fd).toBe(-1);
    expect(region.describe().fd).toBe(-1);
    expect(Buffer.from(region.bytes).equals(Buffer.from(pattern))).toBe(true);
    expect(mapped(path).length).toBeGreaterThan(0);

    region.bytes.fill(0x5a, 0, 3 * 4096);
    region.bytes[2 * MiB - 1] = 0xa5;
    expect(region.bytes[4096]).toBe(0x5a);
    expect(region.bytes[2 * MiB - 1]).toBe(0xa5);
    expect(sha256(path)).toBe(before);

    vm.close();
    expect(region.bytes.byteLength).toBe(0);
    expect(mapped(path)).toEqual([]);
    expect(sha256(path)).toBe(before);
  });

  it('removing the slot unmaps it', () => {
    const { path } = memoryFile(MiB);
    const fd = openSync(path, 'r');
    using kvm = openKvm();
    using vm = kvm.createVm();
    vm.setMemoryRegion({
      slot: 1,
      guestPhysAddr: 0n,
      size: MiB,
      source: { fd, offset: 4096, private: true },
    });
    closeSync(fd);
    expect(mapped(path).length).toBeGreaterThan(0);
    vm.setMemoryRegion({ slot: 1, guestPhysAddr: 0n, size: 0 });
    expect(mapped(path)).toEqual([]);
  });

  it('refuses an unaligned offset, a file too short, and a slot already set, creating nothing', () => {
    const { path } = memoryFile(MiB);
    const fd = openSync(path, 'r');
    try {
      using kvm = openKvm();
      using vm = kvm.createVm();
      const set = (offset: number, size: number, slot = 0) =>
        vm.setMemoryRegion({ slot, guestPhysAddr: 0n, size, source: { fd, offset, private: true } });
      expect(() => set(100, MiB)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
      expect(() => set(4096, 2 * MiB)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
      expect(vm.memoryRegions()).toEqual([]);
      expect(mapped(path)).toEqual([]);
      vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: MiB });
      expect(() => set(4096, MiB)).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    } finally {
      closeSync(fd);
    }
  });

  it('restoreWiring maps the slots it is given a source for, and the others are fresh memfds', () => {
    const { path, pattern } = memoryFile(MiB);
    using kvm = openKvm();
    let wiring: ReturnType<typeof vm.wiring>;
    {
      using vm = kvm.createVm();
      vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: MiB });
      vm.setMemoryRegion({ slot: 1, guestPhysAddr: 0x10_0000n, size: MiB });
      wiring = vm.wiring();
    }
    const fd = openSync(path, 'r');
    using vm = kvm.createVm();
    vm.restoreWiring(
      wiring,
      () => undefined,
      (slot) => (slot === 1 ? { fd, offset: 4096, private: true } : undefined),
    );
    closeSync(fd);
    const [ram, lazy] = vm.memoryRegions();
    expect(ram?.fd).toBeGreaterThanOrEqual(0);
    expect(lazy?.fd).toBe(-1);
    expect(Buffer.from(lazy?.bytes ?? []).equals(Buffer.from(pattern))).toBe(true);
    expect(vm.wiring()).toEqual(wiring);
  });
});
