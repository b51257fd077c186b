/**
 * The register sets' field names, in the order of the kernel's structs: what every backend walks
 * to encode, decode, save and check `Regs` and `Sregs` (one list, not one per backend).
 */
import type { Regs, Segment, Sregs } from '../interface.js';

/** struct kvm_regs: 18 consecutive u64s in this order. */
export const REG_NAMES = [
  'rax',
  'rbx',
  'rcx',
  'rdx',
  'rsi',
  'rdi',
  'rsp',
  'rbp',
  'r8',
  'r9',
  'r10',
  'r11',
  'r12',
  'r13',
  'r14',
  'r15',
  'rip',
  'rflags',
] as const satisfies readonly (keyof Regs)[];

/** The segment registers of struct kvm_sregs, in its order. */
export const SEGMENT_NAMES = [
  'cs',
  'ds',
  'es',
  'fs',
  'gs',
  'ss',
  'tr',
  'ldt',
] as const satisfies readonly (keyof Sregs)[];

/** The one-byte fields of struct kvm_segment, in its order (after base, limit and selector). */
export const SEGMENT_BYTES = [
  'type',
  'present',
  'dpl',
  'db',
  's',
  'l',
  'g',
  'avl',
  'unusable',
] as const satisfies readonly (keyof Segment)[];

/** The control registers and MSR-backed fields of `Sregs` (struct kvm_sregs' cr0 … apic_base). */
export const CONTROL_NAMES = [
  'cr0',
  'cr2',
  'cr3',
  'cr4',
  'cr8',
  'efer',
  'apicBase',
] as const satisfies readonly (keyof Sregs)[];
