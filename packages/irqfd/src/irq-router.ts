import type { IrqRoutingEntry, MsiMessage } from '@rxvmm/kvm';
import { IRQCHIP_IOAPIC, IRQCHIP_PIC_MASTER, IRQCHIP_PIC_SLAVE } from '@rxvmm/kvm';
import { Subject } from 'rxjs';
import { RoutingTable } from './routing.js';

/**
 * The in-kernel interrupt controller that routes end in (the abstract sink of
 * `kvm_kernel_irq_routing_entry.set`). SoftKvm's PIC/IOAPIC/LAPIC model is one.
 * Each returns the kernel's result: > 0 delivered, 0 coalesced/masked, < 0 none.
 */
export interface InterruptSink {
  /** kvm_pic_set_irq(): `pin` 0-15 (slave pins are 8-15). */
  setPicIrq(pin: number, sourceId: number, level: boolean): number;
  /** kvm_ioapic_set_irq(). */
  setIoapicIrq(pin: number, sourceId: number, level: boolean): number;
  /** kvm_set_msi() with level 1: deliver the message to the local APIC(s). */
  deliverMsi(msi: MsiMessage): number;
}

/** `struct kvm_irq_ack_notifier`: runs when the guest acknowledges (EOIs) the interrupt of `gsi`. */
export interface AckNotifier {
  gsi: number;
  /** The guest acknowledged the interrupt (its EOI reached the irqchip). */
  acked(): void;
}

/** An irqfd resampler as the IOAPIC sees it on unmask (`kvm_notify_irqfd_resampler`). */
export interface ResampleNotifier {
  gsi: number;
  /** Signals the resamplefds (irqfd_resampler_notify), without de-asserting the line. */
  notify(): void;
}

/**
 * The VM's GSI routing and `kvm_set_irq()`: holds the current table (replaced
 * atomically), injects a GSI's level through every route, and dispatches irqchip
 * acknowledgements to the ack notifiers of the GSI routed to that pin.
 */
export class IrqRouter {
  readonly #sink: InterruptSink;
  #table: RoutingTable = RoutingTable.empty;
  readonly #ackNotifiers = new Set<AckNotifier>();
  readonly #resamplers = new Set<ResampleNotifier>();
  readonly #routingChanged = new Subject<RoutingTable>();
  /** Emits each new table after KVM_SET_GSI_ROUTING (irqfds re-read their routes). */
  readonly routingChanged$ = this.#routingChanged.asObservable();

  constructor(sink: InterruptSink) {
    this.#sink = sink;
  }

  get table(): RoutingTable {
    return this.#table;
  }

  /** KVM_SET_GSI_ROUTING: validates everything first (`EINVAL`, table unchanged), then swaps. */
  setRouting(entries: readonly IrqRoutingEntry[], flags = 0): void {
    const table = RoutingTable.fromEntries(entries, flags);
    this.#table = table;
    this.#routingChanged.next(table);
  }

  /** kvm_set_irq(): sets `level` from `sourceId` on every route of `gsi`; -1 when it has none. */
  setIrq(sourceId: number, gsi: number, level: boolean): number {
    const routes = this.#table.routes(gsi);
    let ret = -1;
    for (const route of routes) {
      let r: number;
      if (route.type === 'msi') {
        r = level ? this.#sink.deliverMsi(route.msi) : -1; // kvm_set_msi ignores level 0
      } else if (route.irqchip === IRQCHIP_IOAPIC) {
        r = this.#sink.setIoapicIrq(route.pin, sourceId, level);
      } else {
        r = this.#sink.setPicIrq(route.pin, sourceId, level);
      }
      ret = r + Math.max(ret, 0);
    }
    return ret;
  }

  /** kvm_notify_acked_irq(): the interrupt controller calls this on EOI of a pin. */
  notifyAcked(irqchip: number, pin: number): void {
    const gsi = this.#table.gsiOf(irqchip, pin);
    if (gsi === -1) return;
    for (const n of [...this.#ackNotifiers]) if (n.gsi === gsi && this.#ackNotifiers.has(n)) n.acked();
  }

  /** PIC flavour of notifyAcked: `irq` 0-15. */
  notifyPicAcked(irq: number): void {
    this.notifyAcked(irq < 8 ? IRQCHIP_PIC_MASTER : IRQCHIP_PIC_SLAVE, irq);
  }

  /**
   * kvm_notify_irqfd_resampler(): when the guest unmasks a level IOAPIC pin whose
   * IRR is set, the kernel does not inject the possibly stale interrupt if a
   * resampler serves the pin's GSI: it signals the resamplefds (userspace
   * re-checks its device and signals again) and returns true.
   */
  notifyIrqfdResampler(irqchip: number, pin: number): boolean {
    const gsi = this.#table.gsiOf(irqchip, pin);
    if (gsi === -1) return false;
    for (const r of this.#resamplers) {
      if (r.gsi === gsi) {
        r.notify();
        return true;
      }
    }
    return false;
  }

  /** Adds a resampler (a level irqfd's `struct kvm_kernel_irqfd_resampler`); returns the function that removes it. */
  registerResampler(resampler: ResampleNotifier): () => void {
    this.#resamplers.add(resampler);
    return () => {
      this.#resamplers.delete(resampler);
    };
  }

  /** kvm_register_irq_ack_notifier(); returns the unregister function. */
  registerAckNotifier(notifier: AckNotifier): () => void {
    this.#ackNotifiers.add(notifier);
    return () => {
      this.#ackNotifiers.delete(notifier);
    };
  }

  /** Drops every ack notifier and resampler, and completes the routing-change stream. */
  close(): void {
    this.#ackNotifiers.clear();
    this.#resamplers.clear();
    this.#routingChanged.complete();
  }
}
