/**
 * The GSI-routing and MSI types of the KVM API. Defined here, with the
 * interface; `@rxvmm/irqfd` (whose routing table validates them) and every
 * backend import them.
 */

/** An MSI (`struct kvm_msi`, or the MSI part of a routing entry). */
export interface MsiMessage {
  addressLo: number;
  addressHi: number;
  data: number;
  /** Present when KVM_MSI_VALID_DEVID is set. */
  devid?: number;
}

/**
 * One entry of KVM_SET_GSI_ROUTING (`struct kvm_irq_routing_entry`). `flags`
 * is the entry's own flags field (0, or KVM_MSI_VALID_DEVID on an MSI entry).
 * The last form passes a raw `type` code (1 irqchip, 2 MSI, anything else is
 * unknown: `EINVAL`), to exercise validation.
 */
export type IrqRoutingEntry =
  | { gsi: number; type: 'irqchip'; irqchip: number; pin: number; flags?: number }
  | ({ gsi: number; type: 'msi'; flags?: number } & MsiMessage)
  | {
      gsi: number;
      type: number;
      flags?: number;
      irqchip?: number;
      pin?: number;
      addressLo?: number;
      addressHi?: number;
      data?: number;
      devid?: number;
    };
