import type { MemoryRegion, Regs, Sregs } from '@rxvmm/kvm';
import { describe, expect, it } from 'vitest';
import { decodeSregs, newSregsBuffer } from '../structs.js';
import { setupLongMode } from './long-mode.js';
import {
  BOOT_IDT_ADDR,
  BOOT_TABLES_END,
  bootAreaOverlap,
  bootMemoryMap,
  bootTablesEnd,
  FREE_MEMORY_START,
  freeMemoryStart,
} from './memory-map.js';

const hex = (v: bigint) => `0x${v.toString(16)}`;

describe('guest-physical memory map', () => {
  it('is ordered, gap-free from 0 to the end of the tables, and FREE_MEMORY_START ends the tables', () => {
    const map = bootMemoryMap();
    for (let i = 1; i < map.length; i++) expect(map[i]!.start).toBeGreaterThanOrEqual(map[i - 1]!.end);
    const low = map.filter((e) => e.end <= FREE_MEMORY_START);
    expect(low[0]!.start).toBe(0n);
    for (let i = 1; i < low.length; i++) expect(low[i]!.start).toBe(low[i - 1]!.end);
    expect(FREE_MEMORY_START).toBe(BOOT_TABLES_END);
    expect(bootTablesEnd()).toBe(0x8000n);
    expect(freeMemoryStart(512n << 30n)).toBe(0x4000n + 512n * 0x1000n);
    expect(map.find((e) => e.owner === 'setupIdt')).toMatchObject({ start: BOOT_IDT_ADDR, end: 0x2000n });
  });

  it('the README table lists every entry of the map', async () => {
    const { readFileSync } = await import('node:fs');
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const e of bootMemoryMap())
      expect(readme, `${hex(e.start)}: ${e.what}`).toContain(`\`${hex(e.start)}\`–\`${hex(e.end - 1n)}\``);
  });

  it("bootAreaOverlap names the helper structure an address would overwrite (the old README's RESPONSE = 0x2000)", () => {
    expect(bootAreaOverlap(0x2000n, 4n)).toMatchObject({ owner: 'setupLongMode', what: 'PML4' });
    expect(bootAreaOverlap(0x1800n, 4n)).toMatchObject({ owner: 'setupIdt' });
    expect(bootAreaOverlap(0x6ffn, 2n)).toMatchObject({ what: 'GDT (5 entries)' });
    expect(bootAreaOverlap(0x500n, 0x100n)).toBeUndefined();
    expect(bootAreaOverlap(FREE_MEMORY_START, 0x1000n)).toBeUndefined();
    expect(bootAreaOverlap(FREE_MEMORY_START, 0x1000n, 8n << 30n)).toMatchObject({ owner: 'setupLongMode' });
  });

  it('setupLongMode refuses an entry or a stack inside its own tables, naming the way out', () => {
    const bytes = new Uint8Array(0x100000);
    const region: MemoryRegion = {
      slot: 0,
      guestPhysAddr: 0n,
      size: bytes.length,
      flags: 0,
      bytes,
      fd: -1,
      fdOffset: 0,
    };
    const mem = { memoryRegions: () => [region] };
    let sregs: Sregs = decodeSregs(newSregsBuffer());
    let regs = { rip: 0n } as Regs;
    const vcpu = {
      getSregs: () => sregs,
      setSregs: (s: Sregs) => {
        sregs = s;
      },
      getRegs: () => regs,
      setRegs: (r: Regs) => {
        regs = r;
      },
    };
    expect(() => setupLongMode(mem, vcpu, { entry: 0x3000n, stack: 0x80000n })).toThrow(
      /EINVAL: entry \(0x3000\) is inside the PDPT that setupLongMode writes \(0x3000-0x3fff\): use an address at or above 0x8000 \(FREE_MEMORY_START\)/,
    );
    expect(() => setupLongMode(mem, vcpu, { entry: 0x10000n, stack: 0x8000n })).toThrow(/the stack/);
    setupLongMode(mem, vcpu, { entry: 0x8000n, stack: 0x80000n });
    expect(regs.rip).toBe(0x8000n);
  });
});
