/**
 * SoftKvm's kernel-side state as plain, versioned, JSON-serialisable data:
 * the in-kernel irqchip (PIC pair, IOAPIC) of a VM, and per vCPU its
 * registers, its local APIC and where its guest program is. The VM's wiring
 * is `Vm.wiring()`; guest memory and eventfd counters are saved by their
 * owners. A running TypeScript guest program is a generator and cannot be
 * saved: that is the one thing SoftKvm refuses (`ENOTSUP`).
 *
 * A state read from a file is untrusted: the `check*` functions accept only
 * what `state()` could have produced and throw one `EINVAL` otherwise.
 */
import { errnoError } from '@rxvmm/errno';
import type { Regs, RegsState, Segment, SegmentState, Sregs, SregsState } from '@rxvmm/kvm';
import { CONTROL_NAMES, REG_NAMES, SEGMENT_BYTES, SEGMENT_NAMES } from '@rxvmm/kvm';
import { IOAPIC_NUM_PINS, type IoApicState } from './irqchip/ioapic.js';
import type { LocalApicState } from './irqchip/lapic.js';
import type { PicChipState, PicState } from './irqchip/pic.js';

export const SOFT_STATE_VERSION = 1;

/** `SoftVm.state()`: the in-kernel irqchip's devices (null without KVM_CREATE_IRQCHIP). */
export interface SoftVmState {
  version: typeof SOFT_STATE_VERSION;
  irqchip: { pic: PicState; ioapic: IoApicState } | null;
}

/**
 * Where a vCPU's guest program was: none loaded, finished (returned), shut
 * down, or failed (an internal-error exit). A loaded program that has not
 * ended cannot be saved.
 */
export type SoftProgramState = 'none' | 'finished' | 'shutdown' | 'error';

/** `SoftVcpu.state()`. */
export interface SoftVcpuState {
  version: typeof SOFT_STATE_VERSION;
  id: number;
  regs: RegsState;
  sregs: SregsState;
  /** Its local APIC (null without an in-kernel irqchip). */
  lapic: LocalApicState | null;
  program: SoftProgramState;
}

export function notSavable(id: number): Error {
  return errnoError(
    'ENOTSUP',
    `vCPU ${id} is running a TypeScript guest program: a generator's position cannot be saved, so ` +
      'SoftKvm snapshots everything but a running guest program (save before load() or after it ended)',
  );
}

// ---- registers -------------------------------------------------------------------------------

export function regsState(regs: Regs): RegsState {
  return Object.fromEntries(REG_NAMES.map((k) => [k, regs[k].toString()])) as RegsState;
}

export function regsFromState(state: unknown): Regs {
  const s = object(state, 'regs');
  return Object.fromEntries(REG_NAMES.map((k) => [k, u64(s[k], `regs.${k}`)])) as unknown as Regs;
}

export function sregsState(sregs: Sregs): SregsState {
  const out: Record<string, unknown> = {};
  for (const k of SEGMENT_NAMES) out[k] = { ...sregs[k], base: sregs[k].base.toString() };
  for (const k of ['gdt', 'idt'] as const) out[k] = { base: sregs[k].base.toString(), limit: sregs[k].limit };
  for (const k of CONTROL_NAMES) out[k] = sregs[k].toString();
  return out as SregsState;
}

export function sregsFromState(state: unknown): Sregs {
  const s = object(state, 'sregs');
  const out: Record<string, unknown> = {};
  for (const k of SEGMENT_NAMES) {
    const g = object(s[k], `sregs.${k}`) as Partial<SegmentState>;
    const segment: Segment = {
      base: u64(g.base, `sregs.${k}.base`),
      limit: int(g.limit, `sregs.${k}.limit`, 0, 0xffff_ffff),
      selector: int(g.selector, `sregs.${k}.selector`, 0, 0xffff),
      type: 0,
      present: 0,
      dpl: 0,
      db: 0,
      s: 0,
      l: 0,
      g: 0,
      avl: 0,
      unusable: 0,
    };
    for (const f of SEGMENT_BYTES) segment[f] = int(g[f], `sregs.${k}.${f}`, 0, 0xff);
    out[k] = segment;
  }
  for (const k of ['gdt', 'idt'] as const) {
    const t = object(s[k], `sregs.${k}`);
    out[k] = { base: u64(t.base, `sregs.${k}.base`), limit: int(t.limit, `sregs.${k}.limit`, 0, 0xffff) };
  }
  for (const k of CONTROL_NAMES) out[k] = u64(s[k], `sregs.${k}`);
  return out as unknown as Sregs;
}

// ---- irqchip ---------------------------------------------------------------------------------

const PIC_FIELDS = ['irr', 'imr', 'isr', 'lastIrr', 'elcr', 'base'] as const;
const PIC_FLAGS = ['init4', 'autoEoi', 'readIsr'] as const;

export function checkPicState(state: unknown): PicState {
  const s = object(state, 'pic');
  const chips = list(s.chips, 'pic.chips', 2, 2).map((value, i): PicChipState => {
    const c = object(value, `pic.chips[${i}]`);
    const chip = { initState: int(c.initState, `pic.chips[${i}].initState`, 0, 3) } as PicChipState;
    for (const f of PIC_FIELDS) chip[f] = int(c[f], `pic.chips[${i}].${f}`, 0, 0xff);
    for (const f of PIC_FLAGS) chip[f] = bool(c[f], `pic.chips[${i}].${f}`);
    return chip;
  }) as [PicChipState, PicChipState];
  const sources = list(s.sources, 'pic.sources', 16, 16).map((v, i) =>
    int(v, `pic.sources[${i}]`, 0, 0xffff_ffff),
  );
  return { chips, sources };
}

export function checkIoApicState(state: unknown): IoApicState {
  const s = object(state, 'ioapic');
  return {
    ioregsel: int(s.ioregsel, 'ioapic.ioregsel', 0, 0xff),
    id: int(s.id, 'ioapic.id', 0, 0xf),
    irr: int(s.irr, 'ioapic.irr', 0, 2 ** IOAPIC_NUM_PINS - 1),
    redirtbl: list(s.redirtbl, 'ioapic.redirtbl', IOAPIC_NUM_PINS, IOAPIC_NUM_PINS).map((v, i) =>
      u64(v, `ioapic.redirtbl[${i}]`).toString(),
    ),
    sources: list(s.sources, 'ioapic.sources', IOAPIC_NUM_PINS, IOAPIC_NUM_PINS).map((v, i) =>
      int(v, `ioapic.sources[${i}]`, 0, 0xffff_ffff),
    ),
  };
}

export function checkLocalApicState(state: unknown): LocalApicState {
  const s = object(state, 'lapic');
  const vectors = (value: unknown, what: string) => {
    const out = list(value, what, 0, 256).map((v, i) => int(v, `${what}[${i}]`, 0, 255));
    if (new Set(out).size !== out.length) throw bad(`${what} lists a vector twice`);
    return out;
  };
  const regs = list(s.regs, 'lapic.regs', 0, 1024).map((v, i): [number, number] => {
    const pair = list(v, `lapic.regs[${i}]`, 2, 2);
    const offset = int(pair[0], `lapic.regs[${i}] offset`, 0, 0xffc);
    if (offset % 16 !== 0) throw bad(`lapic.regs[${i}] offset 0x${offset.toString(16)} is not a register`);
    return [offset, int(pair[1], `lapic.regs[${i}] value`, 0, 0xffff_ffff)];
  });
  return {
    irr: vectors(s.irr, 'lapic.irr'),
    isr: vectors(s.isr, 'lapic.isr'),
    tmr: vectors(s.tmr, 'lapic.tmr'),
    regs,
  };
}

export function checkVersion(state: unknown, what: string): Record<string, unknown> {
  const s = object(state, what);
  if (s.version !== SOFT_STATE_VERSION)
    throw bad(`${what} version ${String(s.version)} (this code reads version ${SOFT_STATE_VERSION})`);
  return s;
}

export function checkProgram(value: unknown): SoftProgramState {
  if (value === 'none' || value === 'finished' || value === 'shutdown' || value === 'error') return value;
  throw bad(`program ${JSON.stringify(value)}`);
}

// ---- field checks ----------------------------------------------------------------------------

function object(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw bad(`${what} is not an object`);
  return value as Record<string, unknown>;
}

function list(value: unknown, what: string, min: number, max: number): unknown[] {
  if (!Array.isArray(value) || value.length < min || value.length > max)
    throw bad(`${what} is not a list of ${min === max ? min : `${min} to ${max}`} entries`);
  return value;
}

export function int(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw bad(`${what} = ${JSON.stringify(value)} is not an integer in [${min}, ${max}]`);
  return value;
}

function bool(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') throw bad(`${what} = ${JSON.stringify(value)} is not a boolean`);
  return value;
}

function u64(value: unknown, what: string): bigint {
  if (typeof value !== 'string' || !/^(0|[1-9][0-9]{0,19})$/.test(value) || BigInt(value) >= 1n << 64n)
    throw bad(`${what} = ${JSON.stringify(value)} is not a u64 decimal string`);
  return BigInt(value);
}

export function bad(why: string): Error {
  return errnoError('EINVAL', `bad SoftKvm state: ${why}`);
}
