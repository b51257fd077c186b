import type { IoBus, IoDevice } from '@rxvmm/io-bus';
import type { InterruptSink, IrqRouter } from '@rxvmm/irqfd';
import { IRQCHIP_IOAPIC, type MsiMessage } from '@rxvmm/kvm';
import { IOAPIC_BASE, IOAPIC_MEM_LENGTH, IoApic } from './ioapic.js';
import { LocalApic } from './lapic.js';
import { Pic } from './pic.js';

function leRead(data: Uint8Array): number {
  let v = 0;
  for (let i = Math.min(data.length, 4) - 1; i >= 0; i--) v = v * 256 + (data[i] as number);
  return v >>> 0;
}

function leWrite(data: Uint8Array, value: number): void {
  for (let i = 0; i < data.length; i++) data[i] = i < 4 ? (value >>> (8 * i)) & 0xff : 0;
}

/**
 * SoftKvm's in-kernel irqchip (KVM_CREATE_IRQCHIP): PIC pair on the PIO bus,
 * IOAPIC on the MMIO bus, one local APIC per vCPU, and the GSI router that
 * irqfds and KVM_IRQ_LINE inject through. It is the irqfd `InterruptSink`.
 */
export class SoftIrqChip implements InterruptSink {
  readonly router: IrqRouter;
  readonly ioapic: IoApic;
  readonly pic: Pic;
  readonly #apics = new Map<number, LocalApic>();
  readonly #wake: () => void;

  constructor(buses: { pio: IoBus; mmio: IoBus }, router: IrqRouter, wake: () => void) {
    this.#wake = wake;
    this.router = router;
    this.ioapic = new IoApic(
      { deliver: (dest, vector, level) => this.#deliver(dest, vector, level) },
      (pin) => this.router.notifyAcked(IRQCHIP_IOAPIC, pin),
      (pin) => this.router.notifyIrqfdResampler(IRQCHIP_IOAPIC, pin),
    );
    this.pic = new Pic((irq) => this.router.notifyPicAcked(irq), wake);
    const ioapicDevice: IoDevice = {
      read: (addr, data) => {
        leWrite(data, this.ioapic.read(Number(addr - IOAPIC_BASE)));
        return true;
      },
      write: (addr, data) => {
        this.ioapic.write(Number(addr - IOAPIC_BASE), leRead(data));
        return true;
      },
    };
    buses.mmio.register(IOAPIC_BASE, IOAPIC_MEM_LENGTH, ioapicDevice);
    const picDevice: IoDevice = {
      read: (addr, data) => {
        leWrite(data, this.pic.read(Number(addr)));
        return true;
      },
      write: (addr, data) => {
        this.pic.write(Number(addr), leRead(data) & 0xff);
        return true;
      },
    };
    buses.pio.register(0x20n, 2, picDevice);
    buses.pio.register(0xa0n, 2, picDevice);
    buses.pio.register(0x4d0n, 2, picDevice);
  }

  /** The local APIC of a new vCPU (APIC ID = vCPU id; vCPU 0 is the BSP). */
  addApic(id: number): LocalApic {
    const apic = new LocalApic(id, id === 0, (vector) => this.ioapic.eoi(vector), this.#wake);
    this.#apics.set(id, apic);
    return apic;
  }

  /** Detaches a vCPU's local APIC (the vCPU closed). */
  removeApic(id: number): void {
    this.#apics.delete(id);
  }

  /** kvm_irq_delivery_to_apic(), physical destination mode: -1 when no APIC matches. */
  #deliver(dest: number, vector: number, level: boolean): number {
    let r = -1;
    for (const apic of this.#apics.values()) {
      if (dest !== 0xff && apic.id !== dest) continue;
      if (r < 0) r = 0;
      r += apic.accept(vector, level);
    }
    return r;
  }

  setPicIrq(pin: number, sourceId: number, level: boolean): number {
    return this.pic.setIrq(pin, sourceId, level);
  }

  setIoapicIrq(pin: number, sourceId: number, level: boolean): number {
    return this.ioapic.setIrq(pin, sourceId, level);
  }

  /**
   * kvm_set_msi(): x86 MSI format, destination ID in address bits 19:12,
   * vector in data 7:0, level-assert in data bit 14, trigger mode in bit 15.
   * Fixed and lowest-priority delivery; other modes (NMI, SMI, INIT...) are not
   * modelled and deliver nothing.
   */
  deliverMsi(msi: MsiMessage): number {
    const dest = (msi.addressLo >>> 12) & 0xff;
    const vector = msi.data & 0xff;
    const mode = (msi.data >>> 8) & 7;
    const level = ((msi.data >>> 15) & 1) === 1;
    const assert = ((msi.data >>> 14) & 1) === 1;
    if (mode !== 0 && mode !== 1) return 0;
    if (level && !assert) return 0;
    if (mode === 1) {
      const target = [...this.#apics.values()].find((a) => dest === 0xff || a.id === dest);
      return target ? target.accept(vector, level) : -1;
    }
    return this.#deliver(dest, vector, level);
  }

  /** Detaches every local APIC. */
  close(): void {
    this.#apics.clear();
  }
}
