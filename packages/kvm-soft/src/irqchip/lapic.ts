/**
 * A local APIC model, enough for the KVM paths rxvmm exercises: software
 * enable (SVR), fixed-delivery vectors in IRR/ISR with priority classes, the
 * trigger-mode register (TMR) and EOI, which for a level-triggered vector is
 * broadcast to the IOAPIC (that is what drives irqfd resampling). Registers are
 * reachable through MMIO at LAPIC_BASE like the real one.
 */
export const LAPIC_BASE = 0xfee0_0000n;
export const LAPIC_SIZE = 0x1000;

const REG_ID = 0x20;
const REG_VERSION = 0x30;
const REG_TPR = 0x80;
const REG_PPR = 0xa0;
const REG_EOI = 0xb0;
const REG_SVR = 0xf0;
const REG_LVT0 = 0x350;
const SVR_ENABLE = 0x100;
const LVT_MASKED = 0x1_0000;
const DELIVERY_EXTINT = 0x700;

/** A local APIC as plain data (`LocalApic.state()`): vectors ascending, registers by offset. */
export interface LocalApicState {
  irr: number[];
  isr: number[];
  tmr: number[];
  regs: [number, number][];
}

/** One vCPU's local APIC in SoftKvm (arch/x86/kvm/lapic.c, the parts guests here use): IRR/ISR/TMR, EOI, SVR, TPR, LVT masks. */
export class LocalApic {
  readonly id: number;
  #irr = new Set<number>();
  #isr: number[] = []; // in-service vectors, highest last
  #tmr = new Set<number>();
  #regs = new Map<number, number>();

  /** IRR, ISR, TMR and the registers as plain data (`SoftVcpu.state()`). */
  state(): LocalApicState {
    const ascending = (a: number, b: number) => a - b;
    return {
      irr: [...this.#irr].sort(ascending),
      isr: [...this.#isr],
      tmr: [...this.#tmr].sort(ascending),
      regs: [...this.#regs].sort((a, b) => a[0] - b[0]),
    };
  }

  /** Loads a state `checkLocalApicState` accepted; a pending vector wakes the vCPU. */
  restore(state: LocalApicState): void {
    this.#irr = new Set(state.irr);
    this.#isr = [...state.isr].sort((a, b) => a - b);
    this.#tmr = new Set(state.tmr);
    this.#regs = new Map(state.regs);
    if (this.pendingVector() >= 0) this.onPending();
  }

  constructor(
    id: number,
    isBsp: boolean,
    /** Level-triggered EOI broadcast (to the IOAPIC). */
    private readonly onLevelEoi: (vector: number) => void,
    /** Something became deliverable: wake the vCPU. */
    private readonly onPending: () => void,
  ) {
    this.id = id;
    this.#regs.set(REG_SVR, 0xff); // reset: software-disabled
    // KVM_X86_QUIRK_LINT0_REENABLED: the BSP's LINT0 is ExtINT (the PIC's output) at reset.
    this.#regs.set(REG_LVT0, isBsp ? DELIVERY_EXTINT : LVT_MASKED);
  }

  get enabled(): boolean {
    return ((this.#regs.get(REG_SVR) ?? 0) & SVR_ENABLE) !== 0;
  }

  /** kvm_apic_accept_pic_intr(): LINT0 unmasked in ExtINT mode. */
  get acceptsPic(): boolean {
    const lvt0 = this.#regs.get(REG_LVT0) ?? 0;
    return (lvt0 & LVT_MASKED) === 0 && (lvt0 & 0x700) === DELIVERY_EXTINT;
  }

  /** __apic_accept_irq() for fixed delivery: 1 accepted, 0 when the APIC is disabled. */
  accept(vector: number, level: boolean): number {
    if (!this.enabled) return 0;
    this.#irr.add(vector);
    if (level) this.#tmr.add(vector);
    else this.#tmr.delete(vector);
    this.onPending();
    return 1;
  }

  /** The vector the CPU would take now (IRR priority class above ISR's and TPR's), or -1. */
  pendingVector(): number {
    if (!this.enabled || this.#irr.size === 0) return -1;
    const top = Math.max(...this.#irr);
    const inService = this.#isr.length > 0 ? (this.#isr[this.#isr.length - 1] as number) : -1;
    const tpr = this.#regs.get(REG_TPR) ?? 0;
    const ppr = Math.max(inService >= 0 ? inService & 0xf0 : 0, tpr & 0xf0);
    if ((top & 0xf0) <= ppr) return -1;
    return top;
  }

  /** INTA: moves the vector from IRR to ISR. */
  take(vector: number): void {
    this.#irr.delete(vector);
    this.#isr.push(vector);
    this.#isr.sort((a, b) => a - b);
  }

  /** EOI: retires the highest in-service vector; a level one is broadcast to the IOAPIC. */
  eoi(): void {
    const vector = this.#isr.pop();
    if (vector === undefined) return;
    if (this.#tmr.has(vector)) {
      this.#tmr.delete(vector);
      this.onLevelEoi(vector);
    }
    if (this.pendingVector() >= 0) this.onPending();
  }

  /** A 32-bit MMIO read of register `offset`. */
  read(offset: number): number {
    switch (offset) {
      case REG_ID:
        return this.id << 24;
      case REG_VERSION:
        return 0x0005_0014; // version 0x14, 6 LVT entries
      case REG_PPR: {
        const inService = this.#isr[this.#isr.length - 1] ?? 0;
        return Math.max(inService & 0xf0, (this.#regs.get(REG_TPR) ?? 0) & 0xf0);
      }
      case REG_EOI:
        return 0;
      default:
        return this.#regs.get(offset) ?? 0;
    }
  }

  /** A 32-bit MMIO write of register `offset`. */
  write(offset: number, value: number): void {
    if (offset === REG_EOI) {
      this.eoi();
      return;
    }
    if (offset === REG_ID || offset === REG_VERSION || offset === REG_PPR) return; // read-only here
    this.#regs.set(offset, value >>> 0);
    if (offset === REG_SVR || offset === REG_TPR) this.onPending();
  }
}
