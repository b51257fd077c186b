/**
 * The guest-physical memory map of the x86-64 helpers: where `setupLongMode`
 * and `setupIdt` put their tables, which hardware windows the in-kernel
 * irqchip decodes, and where a guest's own code and data may go
 * (`FREE_MEMORY_START` up to the end of RAM). The README's table is this one.
 */
import { errnoError } from '@rxvmm/errno';
import { IOAPIC_BASE, LAPIC_BASE } from './local-apic.js';

/** Guest-physical address of the GDT `setupLongMode` writes (5 entries, 40 bytes). */
export const BOOT_GDT_ADDR = 0x700n;
/** PML4 (one page); the PDPT follows at +0x1000 and the page directories at +0x2000. */
export const BOOT_PML4_ADDR = 0x2000n;
/** The page-directory-pointer table `setupLongMode` writes (one page). */
export const BOOT_PDPT_ADDR = 0x3000n;
/** The first page directory (one page per GiB identity-mapped follows). */
export const BOOT_PD_ADDR = 0x4000n;
/** Default identity-mapped range: 4 GiB (RAM, MMIO windows, IOAPIC, LAPIC), 4 page directories (0x4000-0x7fff). */
export const DEFAULT_IDENTITY_MAP_SIZE = 4n << 30n;
/** Highest guest-physical byte the boot structures use (exclusive) for the default 4 GiB map. */
export const BOOT_TABLES_END = 0x8000n;

/** Where `setupIdt` writes the interrupt descriptor table by default: 256 gates of 16 bytes. */
export const BOOT_IDT_ADDR = 0x1000n;
/** Bytes of a full 64-bit IDT (256 gates × 16 bytes). */
export const IDT_BYTES = 0x1000n;

/**
 * First guest-physical byte no helper uses, for the default 4 GiB identity map: put the guest's
 * code, data, stack and device buffers at or above it (up to the end of RAM). For another
 * `identityMapSize` use `freeMemoryStart(size)`.
 */
export const FREE_MEMORY_START = BOOT_TABLES_END;

/** One range of the map; `end` is exclusive. */
export interface MemoryMapEntry {
  start: bigint;
  end: bigint;
  /** Who uses it: a helper, the hardware, or nobody (`'free'`). */
  owner: 'setupLongMode' | 'setupIdt' | 'irqchip' | 'free';
  what: string;
}

const GIB = 1n << 30n;

/** End (exclusive) of `setupLongMode`'s page tables: one page directory per GiB mapped. */
export function bootTablesEnd(identityMapSize = DEFAULT_IDENTITY_MAP_SIZE): bigint {
  return BOOT_PD_ADDR + (identityMapSize / GIB) * 0x1000n;
}

/** `FREE_MEMORY_START` for an identity map of `identityMapSize` bytes. */
export function freeMemoryStart(identityMapSize = DEFAULT_IDENTITY_MAP_SIZE): bigint {
  return bootTablesEnd(identityMapSize);
}

/** The whole map, low to high, for an identity map of `identityMapSize` bytes (default 4 GiB). */
export function bootMemoryMap(identityMapSize = DEFAULT_IDENTITY_MAP_SIZE): MemoryMapEntry[] {
  const tablesEnd = bootTablesEnd(identityMapSize);
  return [
    { start: 0n, end: BOOT_GDT_ADDR, owner: 'free', what: 'free (real-mode IVT and BIOS data area on a PC)' },
    { start: BOOT_GDT_ADDR, end: BOOT_GDT_ADDR + 40n, owner: 'setupLongMode', what: 'GDT (5 entries)' },
    { start: BOOT_GDT_ADDR + 40n, end: BOOT_IDT_ADDR, owner: 'free', what: 'free' },
    { start: BOOT_IDT_ADDR, end: BOOT_IDT_ADDR + IDT_BYTES, owner: 'setupIdt', what: 'IDT (256 gates)' },
    { start: BOOT_PML4_ADDR, end: BOOT_PDPT_ADDR, owner: 'setupLongMode', what: 'PML4' },
    { start: BOOT_PDPT_ADDR, end: BOOT_PD_ADDR, owner: 'setupLongMode', what: 'PDPT' },
    {
      start: BOOT_PD_ADDR,
      end: tablesEnd,
      owner: 'setupLongMode',
      what: 'page directories (one page per GiB identity-mapped, 2 MiB pages)',
    },
    { start: tablesEnd, end: IOAPIC_BASE, owner: 'free', what: "free up to the end of RAM: the guest's own" },
    { start: IOAPIC_BASE, end: IOAPIC_BASE + 0x1000n, owner: 'irqchip', what: 'IOAPIC registers (not RAM)' },
    {
      start: LAPIC_BASE,
      end: LAPIC_BASE + 0x1000n,
      owner: 'irqchip',
      what: 'local APIC registers (not RAM)',
    },
  ];
}

/**
 * The helper structure `[start, start + length)` overlaps (for the default map), or undefined.
 * A VMM can check its own fixed addresses with it (the README's `RESPONSE` mistake).
 */
export function bootAreaOverlap(
  start: bigint,
  length: bigint,
  identityMapSize = DEFAULT_IDENTITY_MAP_SIZE,
): MemoryMapEntry | undefined {
  const end = start + length;
  return bootMemoryMap(identityMapSize).find(
    (e) => e.owner !== 'free' && e.owner !== 'irqchip' && start < e.end && e.start < end,
  );
}

/** Throws EINVAL naming the structure when `[start, start + length)` overlaps a helper's table. */
export function assertOutsideBootArea(
  what: string,
  start: bigint,
  length: bigint,
  identityMapSize = DEFAULT_IDENTITY_MAP_SIZE,
): void {
  const hit = bootAreaOverlap(start, length, identityMapSize);
  if (hit)
    throw errnoError(
      'EINVAL',
      `${what} (0x${start.toString(16)}) is inside the ${hit.what} that ${hit.owner} writes ` +
        `(0x${hit.start.toString(16)}-0x${(hit.end - 1n).toString(16)}): use an address at or above ` +
        `0x${freeMemoryStart(identityMapSize).toString(16)} (FREE_MEMORY_START)`,
    );
}
