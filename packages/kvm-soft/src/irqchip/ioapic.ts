/**
 * The KVM IOAPIC (arch/x86/kvm/ioapic.c), reduced to what guests and irqfds
 * observe: 24 pins whose line is the OR of its IRQ sources, IRR, redirection
 * entries (vector, trigger mode, mask, destination, remote IRR), delivery to
 * the local APICs, and the EOI path that runs the ack notifiers (irqfd
 * resampling) and re-delivers a level line that is still asserted.
 * Registers: IOREGSEL at +0x00, IOWIN at +0x10, EOI at +0x40 (version 0x20).
 */
export const IOAPIC_BASE = 0xfec0_0000n;
export const IOAPIC_MEM_LENGTH = 0x100;
export const IOAPIC_NUM_PINS = 24;

const RTE_MASK = 1n << 16n;
const RTE_LEVEL = 1n << 15n;
const RTE_REMOTE_IRR = 1n << 14n;

export interface ApicBus {
  /** Fixed delivery of `vector` to APIC `dest` (0xff: all); returns how many accepted, -1 for no target. */
  deliver(dest: number, vector: number, level: boolean): number;
}

/** The IOAPIC as plain data (`IoApic.state()`); redirection entries as decimal strings. */
export interface IoApicState {
  ioregsel: number;
  id: number;
  irr: number;
  redirtbl: string[];
  /** Per pin: the bitmask of IRQ source IDs asserting it. */
  sources: number[];
}

/** The IOAPIC of SoftKvm's irqchip (arch/x86/kvm/ioapic.c): 24 redirection entries, edge and level pins, remote IRR. */
export class IoApic {
  #ioregsel = 0;
  #id = 0;
  #irr = 0;
  readonly #redirtbl: bigint[] = Array.from({ length: IOAPIC_NUM_PINS }, () => RTE_MASK);
  readonly #sources: number[] = new Array(IOAPIC_NUM_PINS).fill(0);

  /** The registers and line sources as plain data (`SoftVm.state()`). */
  state(): IoApicState {
    return {
      ioregsel: this.#ioregsel,
      id: this.#id,
      irr: this.#irr,
      redirtbl: this.#redirtbl.map(String),
      sources: [...this.#sources],
    };
  }

  /** Loads a state `checkIoApicState` accepted. */
  restore(state: IoApicState): void {
    this.#ioregsel = state.ioregsel;
    this.#id = state.id;
    this.#irr = state.irr;
    this.#redirtbl.splice(0, IOAPIC_NUM_PINS, ...state.redirtbl.map(BigInt));
    this.#sources.splice(0, IOAPIC_NUM_PINS, ...state.sources);
  }

  constructor(
    private readonly apics: ApicBus,
    /** kvm_notify_acked_irq(KVM_IRQCHIP_IOAPIC, pin). */
    private readonly notifyAcked: (pin: number) => void,
    /** kvm_notify_irqfd_resampler(KVM_IRQCHIP_IOAPIC, pin): true when a resampler took it. */
    private readonly notifyResampler: (pin: number) => boolean = () => false,
  ) {}

  /** ioapic_set_irq(): returns 1 delivered/de-asserted, 0 coalesced or masked, -1 no target. */
  setIrq(pin: number, sourceId: number, level: boolean): number {
    if (pin < 0 || pin >= IOAPIC_NUM_PINS) return -1;
    const bit = 1 << sourceId;
    this.#sources[pin] = level ? (this.#sources[pin] as number) | bit : (this.#sources[pin] as number) & ~bit;
    const mask = 1 << pin;
    if (this.#sources[pin] === 0) {
      this.#irr &= ~mask;
      return 1;
    }
    const entry = this.#redirtbl[pin] as bigint;
    const oldIrr = this.#irr;
    this.#irr |= mask;
    if ((entry & RTE_LEVEL) === 0n && oldIrr === this.#irr) return 0; // edge already pending: coalesced
    return this.#service(pin);
  }

  /** ioapic_service(). */
  #service(pin: number): number {
    const entry = this.#redirtbl[pin] as bigint;
    const level = (entry & RTE_LEVEL) !== 0n;
    if (entry & RTE_MASK || (level && entry & RTE_REMOTE_IRR)) return -1;
    const vector = Number(entry & 0xffn);
    const dest = Number((entry >> 56n) & 0xffn);
    const ret = this.apics.deliver(dest, vector, level);
    if (ret > 0 && level) this.#redirtbl[pin] = entry | RTE_REMOTE_IRR;
    return ret;
  }

  /** EOI of `vector` broadcast by a local APIC (level-triggered vectors only). */
  eoi(vector: number): void {
    for (let pin = 0; pin < IOAPIC_NUM_PINS; pin++) {
      const entry = this.#redirtbl[pin] as bigint;
      if (Number(entry & 0xffn) !== vector) continue;
      this.notifyAcked(pin); // ack notifiers first: resampling may de-assert the line
      const now = this.#redirtbl[pin] as bigint;
      if ((now & RTE_LEVEL) === 0n) continue;
      this.#redirtbl[pin] = now & ~RTE_REMOTE_IRR;
      if ((now & RTE_MASK) === 0n && this.#irr & (1 << pin)) this.#service(pin);
    }
  }

  /** An MMIO read of the index/data window at `offset`. */
  read(offset: number): number {
    if (offset === 0x00) return this.#ioregsel;
    if (offset !== 0x10) return 0;
    const reg = this.#ioregsel;
    if (reg === 0x00) return this.#id << 24;
    if (reg === 0x01) return ((IOAPIC_NUM_PINS - 1) << 16) | 0x20;
    if (reg === 0x02) return 0;
    const pin = (reg - 0x10) >> 1;
    if (pin < 0 || pin >= IOAPIC_NUM_PINS) return 0xffff_ffff;
    const entry = this.#redirtbl[pin] as bigint;
    return Number(reg & 1 ? entry >> 32n : entry & 0xffff_ffffn) >>> 0;
  }

  /** An MMIO write of the index/data window at `offset`. */
  write(offset: number, value: number): void {
    if (offset === 0x00) {
      this.#ioregsel = value & 0xff;
      return;
    }
    if (offset === 0x40) {
      this.eoi(value & 0xff);
      return;
    }
    if (offset !== 0x10) return;
    const reg = this.#ioregsel;
    if (reg === 0x00) {
      this.#id = (value >>> 24) & 0xf;
      return;
    }
    const pin = (reg - 0x10) >> 1;
    if (reg < 0x10 || pin >= IOAPIC_NUM_PINS) return;
    const old = this.#redirtbl[pin] as bigint;
    let entry: bigint;
    if (reg & 1) entry = (old & 0xffff_ffffn) | (BigInt(value >>> 0) << 32n);
    else
      entry =
        (old & ~0xffff_ffffn) |
        (BigInt(value >>> 0) & ~(RTE_REMOTE_IRR | (1n << 12n))) |
        (old & RTE_REMOTE_IRR);
    if ((entry & RTE_LEVEL) === 0n) entry &= ~RTE_REMOTE_IRR; // edge: no remote IRR
    this.#redirtbl[pin] = entry;
    // Unmasking a level pin with IRR set: the pending state may be stale. With an irqfd
    // resampler on the pin's GSI the kernel clears IRR and signals the resamplefds instead of
    // injecting (userspace re-checks and signals again); otherwise it delivers.
    if (
      entry & RTE_LEVEL &&
      this.#irr & (1 << pin) &&
      (entry & RTE_MASK) === 0n &&
      (entry & RTE_REMOTE_IRR) === 0n
    ) {
      if (this.notifyResampler(pin)) this.#irr &= ~(1 << pin);
      else this.#service(pin);
    }
  }
}
