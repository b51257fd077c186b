/**
 * vCPU register sets as plain, JSON-serialisable data, the same on every
 * backend (a snapshot of a SoftKvm vCPU and of a /dev/kvm vCPU share these
 * parts): every 64-bit value is a decimal string. Types only; each backend
 * converts and checks them.
 */
import type { DescriptorTable, Regs, Segment, Sregs } from './interface.js';

/** `Regs` with each register as a decimal string. */
export type RegsState = { [K in keyof Regs]: string };

/** `Segment` with `base` as a decimal string. */
export type SegmentState = Omit<Segment, 'base'> & { base: string };

/** `DescriptorTable` with `base` as a decimal string. */
export type DescriptorTableState = Omit<DescriptorTable, 'base'> & { base: string };

/** `Sregs` with every 64-bit field as a decimal string. */
export type SregsState = {
  [K in keyof Sregs]: Sregs[K] extends Segment
    ? SegmentState
    : Sregs[K] extends DescriptorTable
      ? DescriptorTableState
      : string;
};
