import { type MemoryRegion, REG_NAMES, type Regs, type Sregs } from '@rxvmm/kvm';
import { describe, expect, it } from 'vitest';
import { decodeSregs, newSregsBuffer } from '../structs.js';
import {
  GDT_CODE64_SELECTOR,
  gdtEntries,
  setLongModeRegisters,
  setupLongMode,
  writeLongModeTables,
} from './long-mode.js';
import {
  BOOT_GDT_ADDR,
  BOOT_PD_ADDR,
  BOOT_PDPT_ADDR,
  BOOT_PML4_ADDR,
  BOOT_TABLES_END,
} from './memory-map.js';
import { setupRealMode } from './real-mode.js';

function ram(size: number): { memoryRegions(): MemoryRegion[]; bytes: Uint8Array } {
  const bytes = new Uint8Array(size);
  const region: MemoryRegion = { slot: 0, guestPhysAddr: 0n, size, flags: 0, bytes, fd: -1, fdOffset: 0 };
  return { memoryRegions: () => [region], bytes };
}

function fakeVcpu() {
  let sregs: Sregs = decodeSregs(newSregsBuffer());
  let regs = {} as Regs;
  for (const k of REG_NAMES) regs[k] = 0n;
  return {
    getRegs: () => ({ ...regs }),
    setRegs: (r: Regs) => {
      regs = { ...r };
    },
    getSregs: () => structuredClone(sregs),
    setSregs: (s: Sregs) => {
      sregs = structuredClone(s);
    },
  };
}

const u64 = (b: Uint8Array, at: bigint) => new DataView(b.buffer).getBigUint64(Number(at), true);

describe('long-mode tables', () => {
  it('identity-maps 4 GiB with 2 MiB pages below BOOT_TABLES_END', () => {
    const mem = ram(0x10000);
    writeLongModeTables(mem);
    expect(u64(mem.bytes, BOOT_PML4_ADDR)).toBe(BOOT_PDPT_ADDR | 3n);
    for (let i = 0n; i < 4n; i++)
      expect(u64(mem.bytes, BOOT_PDPT_ADDR + i * 8n)).toBe((BOOT_PD_ADDR + i * 0x1000n) | 3n);
    expect(u64(mem.bytes, BOOT_PDPT_ADDR + 32n)).toBe(0n);
    expect(u64(mem.bytes, BOOT_PD_ADDR)).toBe(0x83n);
    // The last 2 MiB page below 4 GiB (LAPIC/IOAPIC live there) maps to itself.
    expect(u64(mem.bytes, BOOT_PD_ADDR + 2047n * 8n)).toBe(0xffe0_0000n | 0x83n);
    expect(BOOT_PD_ADDR + 4n * 0x1000n).toBe(BOOT_TABLES_END);
    expect(u64(mem.bytes, BOOT_GDT_ADDR + 8n)).toBe(gdtEntries()[1]);
  });

  it('every entry of a 512 GiB map, addresses above 4 GiB included, is the identity 2 MiB page', () => {
    const size = 512n << 30n;
    const mem = ram(Number(BOOT_PD_ADDR) + 512 * 0x1000);
    writeLongModeTables(mem, size);
    for (let d = 0n; d < 512n; d++) {
      expect(u64(mem.bytes, BOOT_PDPT_ADDR + d * 8n)).toBe((BOOT_PD_ADDR + d * 0x1000n) | 3n);
      for (let i = 0n; i < 512n; i++)
        if (u64(mem.bytes, BOOT_PD_ADDR + d * 0x1000n + i * 8n) !== (((d * 512n + i) << 21n) | 0x83n))
          throw new Error(`PD ${d} entry ${i} is wrong`);
    }
    expect(u64(mem.bytes, BOOT_PD_ADDR + 512n * 0x1000n - 8n)).toBe(((512n << 30n) - (2n << 20n)) | 0x83n);
  });

  it('rejects sizes that are not whole GiB, and RAM that does not hold the tables (EFAULT)', () => {
    expect(() => writeLongModeTables(ram(0x10000), 3n << 20n)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() => writeLongModeTables(ram(0x1000))).toThrow(expect.objectContaining({ code: 'EFAULT' }));
  });

  it('sets CR0.PE|PG, CR4.PAE, EFER.LME|LMA, a 64-bit CS and the entry/stack', () => {
    const vcpu = fakeVcpu();
    setupLongMode(ram(0x10000), vcpu, { entry: 0x10000n, stack: 0x80000n, regs: { rdi: 7n } });
    const s = vcpu.getSregs();
    expect(s.cr0 & 0x8000_0001n).toBe(0x8000_0001n);
    expect(s.cr4 & 0x20n).toBe(0x20n);
    expect(s.efer).toBe(0x500n);
    expect(s.cr3).toBe(BOOT_PML4_ADDR);
    expect(s.cs).toMatchObject({ selector: GDT_CODE64_SELECTOR, l: 1, db: 0, present: 1, s: 1 });
    expect(s.gdt).toEqual({ base: BOOT_GDT_ADDR, limit: 39 });
    expect(vcpu.getRegs()).toMatchObject({ rip: 0x10000n, rsp: 0x80000n, rflags: 2n, rdi: 7n });
  });

  it('setLongModeRegisters: only the registers (the tables were written elsewhere, e.g. on another thread)', () => {
    const vcpu = fakeVcpu();
    const mem = ram(0x10000);
    setLongModeRegisters(vcpu, { entry: 0x10000n, stack: 0x80000n });
    expect(() => setLongModeRegisters(vcpu, { entry: BOOT_PML4_ADDR, stack: 0x80000n })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(mem.bytes.every((b) => b === 0)).toBe(true);
    expect(vcpu.getSregs().cr3).toBe(BOOT_PML4_ADDR);
    expect(vcpu.getRegs()).toMatchObject({ rip: 0x10000n, rsp: 0x80000n });
    writeLongModeTables(mem); // what the caller did before
    expect(u64(mem.bytes, BOOT_PML4_ADDR)).toBe(BOOT_PDPT_ADDR | 3n);
  });

  it('real mode: CS:IP from a linear entry, protection and paging off', () => {
    const vcpu = fakeVcpu();
    setupLongMode(ram(0x10000), vcpu, { entry: 0n, stack: 0n });
    setupRealMode(vcpu, { entry: 0x12345n, stack: 0x7000n });
    const s = vcpu.getSregs();
    expect(s.cs).toMatchObject({ selector: 0x1000, base: 0x10000n, l: 0, db: 0 });
    expect(s.cr0 & 0x8000_0001n).toBe(0n);
    expect(s.efer).toBe(0n);
    expect(vcpu.getRegs()).toMatchObject({ rip: 0x2345n, rsp: 0x7000n });
    expect(() => setupRealMode(vcpu, { entry: 1n << 20n })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });
});
