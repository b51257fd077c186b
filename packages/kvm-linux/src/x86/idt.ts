/**
 * The 64-bit interrupt descriptor table from the VMM's side: `setupIdt`
 * writes gates for the vectors a guest handles, pointing at handler code
 * already in guest RAM, and loads IDTR through KVM_SET_SREGS, so the guest
 * needs neither a gate-building loop nor `lidt`. Vectors without a handler
 * get a not-present gate: an interrupt there is a #NP the guest cannot
 * handle either, so the vCPU ends in a triple fault (a `shutdown` exit)
 * instead of running on at a wrong address.
 */
import { errnoError } from '@rxvmm/errno';
import type { Sregs, Vcpu } from '@rxvmm/kvm';
import { writeGuest } from '../memory.js';
import { GDT_CODE64_SELECTOR, type GuestMemorySource } from './long-mode.js';
import { BOOT_IDT_ADDR, IDT_BYTES } from './memory-map.js';

/** Bytes of one 64-bit gate. */
export const IDT_GATE_BYTES = 16;

/** Handler addresses (guest-virtual = guest-physical under `setupLongMode`'s identity map) by vector. */
export type IdtHandlers = ReadonlyMap<number, bigint> | Readonly<Record<number, bigint>>;

/** How a gate is built (`idtGate`, `writeIdt`, `setupIdt`). */
export interface IdtGateOptions {
  /** Code segment selector (default `GDT_CODE64_SELECTOR`, the one `setupLongMode` loads). */
  selector?: number;
  /** `'interrupt'` (default: IF cleared on entry) or `'trap'` (IF kept). */
  type?: 'interrupt' | 'trap';
  /** Interrupt stack table index, 0..7 (default 0: the current stack). */
  ist?: number;
  /** Descriptor privilege level, 0..3 (default 0). */
  dpl?: number;
}

/** Options of `setupIdt`: the handlers by vector, where the table goes, and the gate options. */
export interface SetupIdtOptions extends IdtGateOptions {
  handlers: IdtHandlers;
  /** Where the 4 KiB table goes (default `BOOT_IDT_ADDR`, 0x1000: free under `setupLongMode`). */
  base?: bigint;
}

/** The 16-byte 64-bit gate for a handler at `handler`. */
export function idtGate(handler: bigint, options: IdtGateOptions = {}): Uint8Array {
  const selector = options.selector ?? GDT_CODE64_SELECTOR;
  const ist = options.ist ?? 0;
  const dpl = options.dpl ?? 0;
  if (handler < 0n || handler >= 1n << 64n)
    throw errnoError('EINVAL', `handler 0x${handler.toString(16)} is not a u64`);
  if (!Number.isInteger(ist) || ist < 0 || ist > 7)
    throw errnoError('EINVAL', `ist must be 0..7, got ${ist}`);
  if (!Number.isInteger(dpl) || dpl < 0 || dpl > 3)
    throw errnoError('EINVAL', `dpl must be 0..3, got ${dpl}`);
  const gate = new Uint8Array(IDT_GATE_BYTES);
  const view = new DataView(gate.buffer);
  view.setUint16(0, Number(handler & 0xffffn), true);
  view.setUint16(2, selector, true);
  view.setUint8(4, ist);
  // P=1, DPL, type 0xE (64-bit interrupt gate) or 0xF (trap gate).
  view.setUint8(5, 0x80 | (dpl << 5) | (options.type === 'trap' ? 0xf : 0xe));
  view.setUint16(6, Number((handler >> 16n) & 0xffffn), true);
  view.setUint32(8, Number((handler >> 32n) & 0xffff_ffffn), true);
  return gate;
}

function handlerEntries(handlers: IdtHandlers): [number, bigint][] {
  const entries =
    handlers instanceof Map
      ? [...(handlers as ReadonlyMap<number, bigint>)]
      : Object.entries(handlers).map(([v, h]) => [Number(v), h] as [number, bigint]);
  for (const [vector] of entries)
    if (!Number.isInteger(vector) || vector < 0 || vector > 255)
      throw errnoError('EINVAL', `IDT vector must be 0..255, got ${vector}`);
  return entries;
}

/**
 * Writes a full 256-gate IDT at `base` (default `BOOT_IDT_ADDR`): a gate per handler, not-present
 * gates elsewhere. Returns the IDTR value to load.
 */
export function writeIdt(
  memory: GuestMemorySource,
  handlers: IdtHandlers,
  options: IdtGateOptions & { base?: bigint } = {},
): Sregs['idt'] {
  const base = options.base ?? BOOT_IDT_ADDR;
  const table = new Uint8Array(Number(IDT_BYTES));
  for (const [vector, handler] of handlerEntries(handlers))
    table.set(idtGate(handler, options), vector * IDT_GATE_BYTES);
  writeGuest(memory.memoryRegions(), base, table);
  return { base, limit: Number(IDT_BYTES) - 1 };
}

/**
 * Writes the IDT (see `writeIdt`) and loads IDTR with KVM_SET_SREGS. Call after `setupLongMode`
 * (the gates name its 64-bit code selector), on the vCPU's thread.
 */
export function setupIdt(
  memory: GuestMemorySource,
  vcpu: Pick<Vcpu, 'getSregs' | 'setSregs'>,
  options: SetupIdtOptions,
): void {
  const idt = writeIdt(memory, options.handlers, options);
  vcpu.setSregs({ ...vcpu.getSregs(), idt });
}
