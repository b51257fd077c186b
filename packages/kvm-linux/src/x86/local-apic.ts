/**
 * The local APIC from the VMM's side: its registers, and `enableLocalApic`,
 * which software-enables it (SVR bit 8 + the spurious vector) through
 * KVM_GET_LAPIC/KVM_SET_LAPIC before the guest runs, so a guest needs no
 * set-up code of its own to take interrupts. The EOI is the guest's to send
 * (`GUEST_LAPIC_EOI`, or `rxvmm_lapic_eoi()` of guest/include/rxvmm/x86.h).
 */
import { errnoError } from '@rxvmm/errno';
import type { LinuxVcpu } from '../vcpu.js';

/** Guest-physical base of the local APIC's registers (the in-kernel irqchip decodes it). */
export const LAPIC_BASE = 0xfee0_0000n;
/** Guest-physical base of the IOAPIC's index/data window. */
export const IOAPIC_BASE = 0xfec0_0000n;

/** Local APIC register offsets (from `LAPIC_BASE`, and in the KVM_GET_LAPIC page). */
export const LapicRegister = {
  ID: 0x20,
  VERSION: 0x30,
  TPR: 0x80,
  EOI: 0xb0,
  SVR: 0xf0,
  ISR: 0x100,
  TMR: 0x180,
  IRR: 0x200,
  LVT_TIMER: 0x320,
  LVT_LINT0: 0x350,
  LVT_LINT1: 0x360,
  LVT_ERROR: 0x370,
} as const;

/** The address a guest writes 0 to for End Of Interrupt. */
export const LAPIC_EOI_ADDR = LAPIC_BASE + BigInt(LapicRegister.EOI);
/** SVR bit 8: APIC software enable. */
export const APIC_SVR_ENABLE = 0x100;
/** LVT bit 16: the entry is masked. */
export const APIC_LVT_MASKED = 0x1_0000;

/** Options of `enableLocalApic`. */
export interface LocalApicOptions {
  /** Vector of spurious interrupts, 32..255 (default 0xff). The guest's gate for it needs no EOI. */
  spuriousVector?: number;
  /** Task priority (TPR), 0..255 (default 0: every vector is delivered). */
  taskPriority?: number;
  /**
   * Mask LINT0 (default true). KVM wires the legacy PIC to the boot vCPU's LINT0 as ExtINT: left
   * unmasked, a PIC input (the PIT's, or a GSI < 16 raised by irqfd or KVM_IRQ_LINE) arrives as
   * well as the IOAPIC's.
   */
  maskLint0?: boolean;
  /** Mask LINT1 (NMI on a PC; default true). */
  maskLint1?: boolean;
}

type LapicAccess = Pick<LinuxVcpu, 'getLapic' | 'setLapic'>;

function byteOption(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min || value > 255)
    throw errnoError('EINVAL', `${name} must be an integer ${min}..255, got ${value}`);
  return value;
}

/**
 * Software-enables the vCPU's local APIC: SVR = APIC_SVR_ENABLE | spuriousVector, TPR, LINT0/LINT1
 * masks. Needs the in-kernel irqchip (`vm.createIrqChip()` before the vCPU was created; the ioctl
 * fails otherwise). Call on the vCPU's thread (in a VcpuRunner handler: in `setup`, with `ctx.vcpu`).
 */
export function enableLocalApic(vcpu: LapicAccess, options: LocalApicOptions = {}): void {
  const spurious = byteOption('spuriousVector', options.spuriousVector ?? 0xff, 32);
  const tpr = byteOption('taskPriority', options.taskPriority ?? 0, 0);
  const page = vcpu.getLapic();
  const regs = new DataView(page.buffer, page.byteOffset, page.byteLength);
  const svr = regs.getUint32(LapicRegister.SVR, true);
  regs.setUint32(LapicRegister.SVR, (svr & ~0x1ff) | APIC_SVR_ENABLE | spurious, true);
  regs.setUint32(LapicRegister.TPR, tpr, true);
  for (const [reg, mask] of [
    [LapicRegister.LVT_LINT0, options.maskLint0 ?? true],
    [LapicRegister.LVT_LINT1, options.maskLint1 ?? true],
  ] as const) {
    const lvt = regs.getUint32(reg, true);
    regs.setUint32(reg, mask ? lvt | APIC_LVT_MASKED : lvt & ~APIC_LVT_MASKED, true);
  }
  vcpu.setLapic(page);
}

/** Reads one 32-bit register out of a KVM_GET_LAPIC page. */
export function lapicRegister(page: Uint8Array, offset: number): number {
  return new DataView(page.buffer, page.byteOffset, page.byteLength).getUint32(offset, true);
}
