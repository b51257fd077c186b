/**
 * x86-64 set-up for a vCPU that starts directly in 64-bit long mode: a GDT,
 * identity-mapped page tables (2 MiB pages), segment registers and
 * CR0/CR4/EFER, written through KVM_SET_SREGS/KVM_SET_REGS. The tables are
 * written into guest RAM at the addresses of memory-map.ts, so guests know
 * where they are (and keep clear of them).
 */
import { errnoError } from '@rxvmm/errno';
import type { MemoryRegion, Regs, Segment, Sregs, Vcpu, Vm } from '@rxvmm/kvm';
import { writeGuest } from '../memory.js';
import {
  assertOutsideBootArea,
  BOOT_GDT_ADDR,
  BOOT_PD_ADDR,
  BOOT_PDPT_ADDR,
  BOOT_PML4_ADDR,
  DEFAULT_IDENTITY_MAP_SIZE,
} from './memory-map.js';

/** GDT selectors the helpers load. */
export const GDT_CODE64_SELECTOR = 0x08;
/** The flat data segment's selector. */
export const GDT_DATA_SELECTOR = 0x10;
/** The TSS's selector (64-bit TSS descriptor, two GDT entries). */
export const GDT_TSS_SELECTOR = 0x18;

/** Control-register and EFER bits. */
export const CR0_PE = 1n << 0n;
/** CR0.MP: monitor coprocessor. */
export const CR0_MP = 1n << 1n;
/** CR0.ET: extension type (always 1). */
export const CR0_ET = 1n << 4n;
/** CR0.NE: native x87 error reporting. */
export const CR0_NE = 1n << 5n;
/** CR0.WP: write-protect honoured in ring 0. */
export const CR0_WP = 1n << 16n;
/** CR0.PG: paging. */
export const CR0_PG = 1n << 31n;
/** CR4.PAE: physical address extension (required by long mode). */
export const CR4_PAE = 1n << 5n;
/** CR4.OSFXSR: FXSAVE/FXRSTOR and SSE enabled. */
export const CR4_OSFXSR = 1n << 9n;
/** CR4.OSXMMEXCPT: SIMD floating-point exceptions. */
export const CR4_OSXMMEXCPT = 1n << 10n;
/** EFER.LME: long mode enable. */
export const EFER_LME = 1n << 8n;
/** EFER.LMA: long mode active. */
export const EFER_LMA = 1n << 10n;

const PAGE_PRESENT = 1;
const PAGE_WRITABLE = 2;
const PAGE_HUGE = 1 << 7;
const HUGE_PAGE = 2 << 20;
const TWO_POW_32 = 2 ** 32;

/** The part of a Vm the helpers need (a vCPU runner's worker offers the same). */
export type GuestMemorySource =
  | Pick<Vm, 'memoryRegions'>
  | {
      /** Guest RAM, as `vm.memoryRegions()` (a VcpuRunner handler's `ctx` offers it too). */
      memoryRegions(): readonly MemoryRegion[];
    };
type RegisterAccess = Pick<Vcpu, 'getRegs' | 'setRegs' | 'getSregs' | 'setSregs'>;

/** Options of `setupLongMode` and `setLongModeRegisters`. */
export interface LongModeOptions {
  /** RIP to start at (64-bit, identity mapped). */
  entry: bigint;
  /** Initial RSP. */
  stack: bigint;
  /** Identity-mapped size from 0, a multiple of 1 GiB up to 512 GiB (default 4 GiB). */
  identityMapSize?: bigint;
  /** Extra general-purpose registers to set (e.g. arguments in rdi/rsi). */
  regs?: Partial<Regs>;
}

/** GDT entries: null, 64-bit code, flat data, a 64-bit TSS (16 bytes). */
export function gdtEntries(): bigint[] {
  return [
    0n,
    0x00af_9b00_0000_ffffn, // code: present, DPL0, execute/read, accessed, L=1, G=1
    0x00cf_9300_0000_ffffn, // data: present, DPL0, read/write, accessed, D/B=1, G=1
    0x0000_8b00_0000_0067n, // TSS (busy, 64-bit), base 0, limit 0x67
    0n, // upper half of the TSS descriptor
  ];
}

function u64le(values: readonly bigint[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 8);
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) => {
    view.setBigUint64(i * 8, v, true);
  });
  return bytes;
}

/**
 * A 4 KiB page-table page of `count` entries `first + i * step | flags` (the rest zero), built with
 * plain numbers (every address is below 2^53): this runs on the way to the guest's first
 * instruction, where a few thousand bigint operations in cold code cost over a millisecond.
 */
function tablePage(count: number, first: number, step: number, flags: number): Uint8Array {
  const bytes = new Uint8Array(0x1000);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < count; i++) {
    const address = first + i * step;
    const low = address % TWO_POW_32;
    view.setUint32(i * 8, (low + flags) >>> 0, true); // low bits of an aligned address are clear
    view.setUint32(i * 8 + 4, (address - low) / TWO_POW_32, true);
  }
  return bytes;
}

/** Writes the GDT and the identity page tables into guest RAM. */
export function writeLongModeTables(
  memory: GuestMemorySource,
  identityMapSize = DEFAULT_IDENTITY_MAP_SIZE,
): void {
  const gib = 1n << 30n;
  if (identityMapSize <= 0n || identityMapSize % gib !== 0n || identityMapSize > 512n * gib) {
    throw errnoError('EINVAL', 'identityMapSize must be a positive multiple of 1 GiB, at most 512 GiB');
  }
  const regions = memory.memoryRegions();
  const directories = Number(identityMapSize / gib);
  const table = PAGE_PRESENT | PAGE_WRITABLE;
  writeGuest(regions, BOOT_GDT_ADDR, u64le(gdtEntries()));
  writeGuest(regions, BOOT_PML4_ADDR, tablePage(1, Number(BOOT_PDPT_ADDR), 0, table));
  writeGuest(regions, BOOT_PDPT_ADDR, tablePage(directories, Number(BOOT_PD_ADDR), 0x1000, table));
  for (let d = 0; d < directories; d++)
    writeGuest(
      regions,
      BOOT_PD_ADDR + BigInt(d) * 0x1000n,
      tablePage(512, d * 512 * HUGE_PAGE, HUGE_PAGE, table | PAGE_HUGE),
    );
}

function segment(selector: number, code: boolean): Segment {
  return {
    base: 0n,
    limit: 0xffff_ffff,
    selector,
    type: code ? 0xb : 0x3,
    present: 1,
    dpl: 0,
    db: code ? 0 : 1,
    s: 1,
    l: code ? 1 : 0,
    g: 1,
    avl: 0,
    unusable: 0,
  };
}

/** The special registers for 64-bit long mode with the helpers' GDT and page tables. */
export function longModeSregs(base: Sregs): Sregs {
  const data = segment(GDT_DATA_SELECTOR, false);
  return {
    ...base,
    cs: segment(GDT_CODE64_SELECTOR, true),
    ds: data,
    es: data,
    fs: data,
    gs: data,
    ss: data,
    tr: {
      base: 0n,
      limit: 0x67,
      selector: GDT_TSS_SELECTOR,
      type: 0xb,
      present: 1,
      dpl: 0,
      db: 0,
      s: 0,
      l: 0,
      g: 0,
      avl: 0,
      unusable: 0,
    },
    gdt: { base: BOOT_GDT_ADDR, limit: 5 * 8 - 1 },
    cr0: CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG,
    cr3: BOOT_PML4_ADDR,
    cr4: CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT,
    efer: EFER_LME | EFER_LMA,
  };
}

/**
 * Puts `vcpu` in 64-bit long mode at `entry` with the stack at `stack`:
 * writes the GDT and identity page tables into `vm`'s RAM (which must cover
 * 0..BOOT_TABLES_END) and loads the registers. `entry` and the top of the
 * stack must be outside those tables (EINVAL otherwise; `FREE_MEMORY_START`
 * and up is the guest's). Call on the vCPU's thread.
 */
export function setupLongMode(vm: GuestMemorySource, vcpu: RegisterAccess, options: LongModeOptions): void {
  checkLongModeEntry(options); // before anything is written
  writeLongModeTables(vm, options.identityMapSize);
  loadLongModeRegisters(vcpu, options);
}

/**
 * `setupLongMode`'s registers alone, for tables written already (`writeLongModeTables` with the
 * same `identityMapSize`, e.g. by the thread that loads the guest image). Same checks.
 */
export function setLongModeRegisters(vcpu: RegisterAccess, options: LongModeOptions): void {
  checkLongModeEntry(options);
  loadLongModeRegisters(vcpu, options);
}

function loadLongModeRegisters(vcpu: RegisterAccess, options: LongModeOptions): void {
  vcpu.setSregs(longModeSregs(vcpu.getSregs()));
  vcpu.setRegs({ ...vcpu.getRegs(), ...options.regs, rip: options.entry, rsp: options.stack, rflags: 0x2n });
}

/** Code or a stack on the tables would overwrite them (or be overwritten) at once: EINVAL. */
function checkLongModeEntry(options: LongModeOptions): void {
  const mapSize = options.identityMapSize ?? DEFAULT_IDENTITY_MAP_SIZE;
  assertOutsideBootArea('entry', options.entry, 1n, mapSize);
  assertOutsideBootArea('the stack', options.stack - 16n, 16n, mapSize);
}
