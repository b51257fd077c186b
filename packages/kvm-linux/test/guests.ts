/**
 * Loads the test guests built from guest/*.S (build/guests/NAME.bin) into a
 * VM's RAM: the binary at CODE_BASE, the parameter block at PARAMS_BASE (see
 * guest/layout.h). Builds them first if the build output is missing, so a
 * fresh checkout's `vitest run` works without `pnpm build`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { MemoryRegion, Vcpu } from '@rxvmm/kvm';
import { setupLongMode } from '../src/index.js';

export type GuestName =
  | 'mmio-writer'
  | 'pio-writer'
  | 'mmio-reader'
  | 'pio-reader'
  | 'mmio-sequence'
  | 'interrupt-waiter';

const guestDir = new URL('../build/guests/', import.meta.url);

function ensureBuilt(): void {
  if (existsSync(new URL('layout.json', guestDir))) return;
  execFileSync(process.execPath, [fileURLToPath(new URL('../guest/build.mjs', import.meta.url))], {
    stdio: 'inherit',
  });
}

ensureBuilt();

const built = JSON.parse(readFileSync(new URL('layout.json', guestDir), 'utf8')) as {
  guests: string[];
  layout: Record<string, number>;
};

function constant(name: string): number {
  const value = built.layout[name];
  if (value === undefined) throw new Error(`guest/layout.h has no ${name}`);
  return value;
}

/** guest/layout.h, as built (one source of truth for the guests and the TS side). */
export const LAYOUT = {
  paramsBase: constant('PARAMS_BASE'),
  codeBase: constant('CODE_BASE'),
  stackTop: BigInt(constant('STACK_TOP')),
  reportPort: constant('REPORT_PORT'),
  donePort: constant('DONE_PORT'),
  readyReport: constant('READY_REPORT'),
  faultTag: constant('FAULT_TAG'),
  valuesMax: constant('P_VALUES_MAX'),
} as const;

const PARAM_OFFSETS = {
  addr: constant('P_ADDR'),
  len: constant('P_LEN'),
  value: constant('P_VALUE'),
  count: constant('P_COUNT'),
  ioapicPin: constant('P_IOAPIC_PIN'),
  vector: constant('P_VECTOR'),
  level: constant('P_LEVEL'),
  ready: constant('P_READY'),
} as const;

export interface GuestParams {
  addr?: bigint;
  len?: number;
  value?: bigint;
  count?: number;
  /** IOAPIC pin the interrupt waiter programs (none: MSI only). */
  ioapicPin?: number;
  vector?: number;
  level?: boolean;
  ready?: boolean;
  /** mmio-sequence: the values written in order (count is their number). */
  values?: readonly bigint[];
}

const binaries = new Map<GuestName, Uint8Array>();

export function guestBinary(name: GuestName): Uint8Array {
  let bin = binaries.get(name);
  if (!bin) {
    bin = new Uint8Array(readFileSync(new URL(`${name}.bin`, guestDir)));
    binaries.set(name, bin);
  }
  return bin;
}

/** The header's 64-bit entry point (layout.h HDR_ENTRY64). */
export function guestEntry(name: GuestName): bigint {
  const bin = guestBinary(name);
  const view = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);
  if (view.getUint32(constant('HDR_MAGIC'), true) !== constant('GUEST_MAGIC')) {
    throw new Error(`${name}.bin: bad guest header`);
  }
  return view.getBigUint64(constant('HDR_ENTRY64'), true);
}

function ramAt0(memory: { memoryRegions(): readonly MemoryRegion[] }): MemoryRegion {
  const ram = memory.memoryRegions().find((r) => r.guestPhysAddr === 0n);
  if (!ram) throw new Error('the test guests need RAM at GPA 0');
  return ram;
}

/** Writes the binary and its parameters into RAM; returns the 64-bit entry point. */
export function loadGuest(
  memory: { memoryRegions(): readonly MemoryRegion[] },
  name: GuestName,
  params: GuestParams = {},
): bigint {
  const ram = ramAt0(memory);
  const bin = guestBinary(name);
  ram.bytes.set(bin, LAYOUT.codeBase);
  const p = new DataView(ram.bytes.buffer, ram.bytes.byteOffset + LAYOUT.paramsBase, 0x100);
  for (let off = 0; off < 0x100; off += 8) p.setBigUint64(off, 0n, true);
  const u64 = (off: number, v: bigint) => p.setBigUint64(off, BigInt.asUintN(64, v), true);
  u64(PARAM_OFFSETS.addr, params.addr ?? 0n);
  u64(PARAM_OFFSETS.len, BigInt(params.len ?? 4));
  u64(PARAM_OFFSETS.value, params.value ?? 0n);
  u64(PARAM_OFFSETS.ioapicPin, params.ioapicPin === undefined ? -1n : BigInt(params.ioapicPin));
  u64(PARAM_OFFSETS.vector, BigInt(params.vector ?? 0));
  u64(PARAM_OFFSETS.level, params.level ? 1n : 0n);
  u64(PARAM_OFFSETS.ready, params.ready ? 1n : 0n);
  if (params.values) {
    if (params.values.length > LAYOUT.valuesMax) throw new Error(`at most ${LAYOUT.valuesMax} values`);
    for (const [i, v] of params.values.entries()) u64(constant('P_VALUES') + 8 * i, v);
    u64(PARAM_OFFSETS.count, BigInt(params.values.length));
  } else {
    u64(PARAM_OFFSETS.count, BigInt(params.count ?? 1));
  }
  return guestEntry(name);
}

/**
 * Loads a guest and enters it in 64-bit mode with @rxvmm/kvm-linux's
 * setupLongMode (the guest then switches to its own GDT and page tables).
 * Call on the vCPU's thread.
 */
export function startGuest(
  memory: { memoryRegions(): readonly MemoryRegion[] },
  vcpu: Pick<Vcpu, 'getRegs' | 'setRegs' | 'getSregs' | 'setSregs'>,
  name: GuestName,
  params: GuestParams = {},
): void {
  const entry = loadGuest(memory, name, params);
  setupLongMode(memory, vcpu, { entry, stack: LAYOUT.stackTop });
}
