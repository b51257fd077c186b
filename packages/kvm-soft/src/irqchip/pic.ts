/**
 * The two cascaded 8259 PICs of KVM (arch/x86/kvm/i8259.c), reduced: per-chip
 * IRR/IMR/ISR, edge detection (last_irr) or level mode (ELCR), ICW1-4
 * initialisation (vector base from ICW2, auto-EOI from ICW4), OCW1 (mask), OCW2
 * (EOI, which runs the ack notifiers), OCW3 (read IRR/ISR), ELCR ports. The
 * slave cascades into master pin 2. Fixed priority (pin 0 highest).
 * Ports: 0x20/0x21, 0xa0/0xa1, 0x4d0/0x4d1 on the PIO bus.
 */
export interface Chip {
  irr: number;
  imr: number;
  isr: number;
  lastIrr: number;
  elcr: number;
  base: number;
  initState: number;
  init4: boolean;
  autoEoi: boolean;
  readIsr: boolean;
}

function chip(): Chip {
  return {
    irr: 0,
    imr: 0,
    isr: 0,
    lastIrr: 0,
    elcr: 0,
    base: 0,
    initState: 0,
    init4: false,
    autoEoi: false,
    readIsr: false,
  };
}

/** The two PICs as plain data (`Pic.state()`): each chip's registers and each irq line's sources. */
export interface PicState {
  chips: [PicChipState, PicChipState];
  /** Per irq 0-15: the bitmask of IRQ source IDs asserting it. */
  sources: number[];
}
export type PicChipState = Chip;

/** The two cascaded 8259s of SoftKvm's irqchip (arch/x86/kvm/i8259.c): ICW/OCW programming, masks, EOI. */
export class Pic {
  readonly #chips: [Chip, Chip] = [chip(), chip()];
  readonly #sources: number[] = new Array(16).fill(0);

  /** Both chips and the line sources as plain data (`SoftVm.state()`). */
  state(): PicState {
    return { chips: [{ ...this.#chips[0] }, { ...this.#chips[1] }], sources: [...this.#sources] };
  }

  /** Loads a state `checkPicState` accepted. */
  restore(state: PicState): void {
    Object.assign(this.#chips[0], state.chips[0]);
    Object.assign(this.#chips[1], state.chips[1]);
    this.#sources.splice(0, 16, ...state.sources);
  }

  constructor(
    /** kvm_notify_acked_irq for a PIC irq 0-15. */
    private readonly notifyAcked: (irq: number) => void,
    /** The INTR output changed (wake the BSP). */
    private readonly onOutput: () => void,
  ) {}

  /** kvm_pic_set_irq(): irq 0-15; the line is the OR of its sources. */
  setIrq(irq: number, sourceId: number, level: boolean): number {
    if (irq < 0 || irq > 15) return -1;
    const bit = 1 << sourceId;
    this.#sources[irq] = level ? (this.#sources[irq] as number) | bit : (this.#sources[irq] as number) & ~bit;
    const ret = this.#setIrq1(this.#chips[irq >> 3] as Chip, irq & 7, this.#sources[irq] !== 0);
    this.#update();
    return ret;
  }

  /** pic_set_irq1(). */
  #setIrq1(s: Chip, irq: number, level: boolean): number {
    const mask = 1 << irq;
    let ret = 1;
    if (s.elcr & mask) {
      if (level) {
        ret = (s.irr & mask) === 0 ? 1 : 0;
        s.irr |= mask;
        s.lastIrr |= mask;
      } else {
        s.irr &= ~mask;
        s.lastIrr &= ~mask;
      }
    } else if (level) {
      if ((s.lastIrr & mask) === 0) {
        ret = (s.irr & mask) === 0 ? 1 : 0;
        s.irr |= mask;
      } else ret = 0;
      s.lastIrr |= mask;
    } else s.lastIrr &= ~mask;
    return (s.imr & mask) !== 0 ? -1 : ret;
  }

  /** Highest-priority requested, unmasked irq of a chip that is above the in-service one; -1 none. */
  #pending(s: Chip): number {
    const requested = s.irr & ~s.imr;
    for (let i = 0; i < 8; i++) {
      if (s.isr & (1 << i)) return -1;
      if (requested & (1 << i)) return i;
    }
    return -1;
  }

  #update(): void {
    const [master, slave] = this.#chips;
    // Cascade: the slave's output is master pin 2 (level).
    this.#setIrq1(master, 2, this.#pending(slave) >= 0);
    this.onOutput();
  }

  /** Is the INTR output asserted? */
  get output(): boolean {
    return this.#pending(this.#chips[0]) >= 0;
  }

  /** kvm_pic_read_irq(): INTA cycle; returns the vector. */
  acknowledge(): number {
    const [master, slave] = this.#chips;
    const irq = this.#pending(master);
    if (irq < 0) return master.base + 7; // spurious
    let vector: number;
    this.#ack(master, irq);
    if (irq === 2) {
      const irq2 = this.#pending(slave);
      if (irq2 >= 0) {
        this.#ack(slave, irq2);
        vector = slave.base + irq2;
        if (slave.autoEoi) this.notifyAcked(irq2 + 8);
      } else vector = slave.base + 7;
    } else {
      vector = master.base + irq;
      if (master.autoEoi) this.notifyAcked(irq);
    }
    this.#update();
    return vector;
  }

  #ack(s: Chip, irq: number): void {
    const mask = 1 << irq;
    if (!s.autoEoi) s.isr |= mask;
    if ((s.elcr & mask) === 0) s.irr &= ~mask; // edge: the request is consumed
  }

  /** An `in` from one of the PIC ports (0x20/0x21, 0xa0/0xa1). */
  read(port: number): number {
    const s = this.#chips[port >= 0xa0 && port < 0x4d0 ? 1 : port === 0x4d1 ? 1 : 0];
    if (port === 0x4d0 || port === 0x4d1) return s.elcr;
    if ((port & 1) === 0) return s.readIsr ? s.isr : s.irr;
    return s.imr;
  }

  /** An `out` to one of the PIC ports. */
  write(port: number, value: number): void {
    const index = port === 0x4d1 || (port >= 0xa0 && port <= 0xa1) ? 1 : 0;
    const s = this.#chips[index];
    const base = index * 8;
    if (port === 0x4d0 || port === 0x4d1) {
      s.elcr = value & (index === 0 ? 0xf8 : 0xde);
      return;
    }
    if ((port & 1) === 0) {
      if (value & 0x10) {
        // ICW1: reset and start the initialisation sequence.
        Object.assign(s, { irr: s.irr & s.elcr, imr: 0, isr: 0, lastIrr: 0, autoEoi: false, readIsr: false });
        s.init4 = (value & 1) !== 0;
        s.initState = 1;
      } else if (value & 0x08) {
        // OCW3.
        if (value & 0x02) s.readIsr = (value & 0x01) !== 0;
      } else {
        // OCW2: non-specific (0x20) or specific (0x60 | irq) EOI.
        const cmd = value >> 5;
        let irq = -1;
        if (cmd === 1) {
          for (let i = 0; i < 8; i++)
            if (s.isr & (1 << i)) {
              irq = i;
              break;
            }
        } else if (cmd === 3) irq = value & 7;
        if (irq >= 0 && s.isr & (1 << irq)) {
          s.isr &= ~(1 << irq);
          if (!(index === 0 && irq === 2)) this.notifyAcked(base + irq);
        }
      }
      this.#update();
      return;
    }
    switch (s.initState) {
      case 0:
        s.imr = value & 0xff; // OCW1
        break;
      case 1:
        s.base = value & 0xf8; // ICW2
        s.initState = 2;
        break;
      case 2: // ICW3
        s.initState = s.init4 ? 3 : 0;
        break;
      case 3: // ICW4
        s.autoEoi = (value & 2) !== 0;
        s.initState = 0;
        break;
    }
    this.#update();
  }
}
