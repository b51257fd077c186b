import { errnoError } from '@rxvmm/errno';
import {
  IOAPIC_NUM_PINS,
  IRQ_ROUTING_IRQCHIP,
  IRQ_ROUTING_MSI,
  IRQCHIP_IOAPIC,
  IRQCHIP_PIC_MASTER,
  IRQCHIP_PIC_SLAVE,
  type IrqRoutingEntry,
  MAX_IRQ_ROUTES,
  MSI_VALID_DEVID,
  type MsiMessage,
  PIC_NUM_PINS,
} from '@rxvmm/kvm';

// The entry (`IrqRoutingEntry`, `struct kvm_irq_routing_entry`) and MSI types are @rxvmm/kvm's.

/** Every field any entry type may carry (what the kernel reads from the union). */
type LooseEntry = {
  gsi: number;
  type: string | number;
  flags?: number;
  irqchip?: number;
  pin?: number;
  addressLo?: number;
  addressHi?: number;
  data?: number;
  devid?: number;
};

/** A validated route (`struct kvm_kernel_irq_routing_entry`). */
export type Route =
  | {
      gsi: number;
      type: 'irqchip';
      irqchip: number /** PIC slave pins are 8..15, as in the kernel. */;
      pin: number;
    }
  | { gsi: number; type: 'msi'; msi: MsiMessage };

/** An immutable routing table (`struct kvm_irq_routing_table`). */
export class RoutingTable {
  readonly #map: Map<number, Route[]>;
  readonly #chip: Map<string, number>;
  readonly entries: readonly Route[];

  private constructor(routes: Route[]) {
    this.entries = routes;
    this.#map = new Map();
    this.#chip = new Map();
    for (const r of routes) {
      const list = this.#map.get(r.gsi) ?? [];
      list.push(r);
      this.#map.set(r.gsi, list);
      if (r.type === 'irqchip') this.#chip.set(`${r.irqchip}:${r.pin}`, r.gsi);
    }
  }

  static readonly empty = new RoutingTable([]);

  /**
   * kvm_set_irq_routing() + setup_routing_entry() + x86 kvm_set_routing_entry():
   * builds a table or throws `EINVAL`, changing nothing.
   */
  static fromEntries(entries: readonly IrqRoutingEntry[], flags = 0): RoutingTable {
    if (entries.length > MAX_IRQ_ROUTES)
      throw errnoError('EINVAL', `nr ${entries.length} > ${MAX_IRQ_ROUTES}`);
    if (flags !== 0) throw errnoError('EINVAL', 'routing flags must be 0');
    for (const e of entries) {
      if (!isU32(e.gsi) || e.gsi >= MAX_IRQ_ROUTES)
        throw errnoError('EINVAL', `gsi ${e.gsi} >= ${MAX_IRQ_ROUTES}`);
    }
    const routes: Route[] = [];
    const byGsi = new Map<number, Route[]>();
    for (const e of entries as readonly LooseEntry[]) {
      const type = typeCode(e.type);
      const entryFlags = e.flags ?? 0;
      if (type === IRQ_ROUTING_MSI ? entryFlags & ~MSI_VALID_DEVID : entryFlags !== 0) {
        throw errnoError('EINVAL', `bad flags 0x${entryFlags.toString(16)} on gsi ${e.gsi}`);
      }
      // One GSI: several irqchip entries only on different irqchips; an MSI entry alone.
      for (const other of byGsi.get(e.gsi) ?? []) {
        if (other.type !== 'irqchip' || type !== IRQ_ROUTING_IRQCHIP || other.irqchip === e.irqchip) {
          throw errnoError('EINVAL', `gsi ${e.gsi} already has a conflicting route`);
        }
      }
      const route = toRoute(e, type);
      routes.push(route);
      byGsi.set(e.gsi, [...(byGsi.get(e.gsi) ?? []), route]);
    }
    return new RoutingTable(routes);
  }

  /** kvm_irq_map_gsi(). */
  routes(gsi: number): readonly Route[] {
    return this.#map.get(gsi) ?? [];
  }

  /** kvm_irq_map_chip_pin(): the GSI routed to an irqchip pin, or -1. */
  gsiOf(irqchip: number, pin: number): number {
    return this.#chip.get(`${irqchip}:${pin}`) ?? -1;
  }
}

function typeCode(type: LooseEntry['type']): number {
  if (type === 'irqchip') return IRQ_ROUTING_IRQCHIP;
  if (type === 'msi') return IRQ_ROUTING_MSI;
  return typeof type === 'number' ? type : -1;
}

function isU32(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffff_ffff;
}

function toRoute(e: LooseEntry, type: number): Route {
  if (type === IRQ_ROUTING_IRQCHIP) {
    const irqchip = e.irqchip ?? -1;
    let pin = e.pin ?? -1;
    if (!isU32(pin)) throw errnoError('EINVAL', `bad pin ${pin}`);
    switch (irqchip) {
      case IRQCHIP_PIC_MASTER:
      case IRQCHIP_PIC_SLAVE:
        if (pin >= PIC_NUM_PINS / 2) throw errnoError('EINVAL', `PIC pin ${pin} >= 8`);
        if (irqchip === IRQCHIP_PIC_SLAVE) pin += PIC_NUM_PINS / 2;
        break;
      case IRQCHIP_IOAPIC:
        if (pin >= IOAPIC_NUM_PINS) throw errnoError('EINVAL', `IOAPIC pin ${pin} >= ${IOAPIC_NUM_PINS}`);
        break;
      default:
        throw errnoError('EINVAL', `unknown irqchip ${irqchip}`);
    }
    return { gsi: e.gsi, type: 'irqchip', irqchip, pin };
  }
  if (type === IRQ_ROUTING_MSI) {
    const msi: MsiMessage = {
      addressLo: (e.addressLo ?? 0) >>> 0,
      addressHi: (e.addressHi ?? 0) >>> 0,
      data: (e.data ?? 0) >>> 0,
    };
    if ((e.flags ?? 0) & MSI_VALID_DEVID) msi.devid = (e.devid ?? 0) >>> 0;
    return { gsi: e.gsi, type: 'msi', msi };
  }
  throw errnoError('EINVAL', `unknown routing entry type ${type}`);
}

/**
 * The table KVM_CREATE_IRQCHIP installs on x86 (arch/x86/kvm/irq_comm.c):
 * GSI 0-15 to the PIC (0-7 master, 8-15 slave) and to IOAPIC pins 0-15,
 * GSI 16-23 to IOAPIC pins 16-23.
 */
export function defaultX86Routing(): IrqRoutingEntry[] {
  const entries: IrqRoutingEntry[] = [];
  for (let gsi = 0; gsi < 24; gsi++) {
    if (gsi < 16) {
      entries.push({
        gsi,
        type: 'irqchip',
        irqchip: gsi < 8 ? IRQCHIP_PIC_MASTER : IRQCHIP_PIC_SLAVE,
        pin: gsi % 8,
      });
    }
    entries.push({ gsi, type: 'irqchip', irqchip: IRQCHIP_IOAPIC, pin: gsi });
  }
  return entries;
}
