/**
 * A VM's wiring as plain, versioned, JSON-serialisable data: what a VMM set
 * up through the `Vm` ioctls (memory slots, the in-kernel irqchip, the GSI
 * routing table, ioeventfds with their datamatch, irqfds with their
 * resamplefd), which a snapshot must re-create in a fresh process before the
 * guest runs again. Every backend records it as the ioctls succeed
 * (`Vm.wiring()`) and re-applies it (`Vm.restoreWiring()`). Types only.
 *
 * 64-bit values are decimal strings. Eventfds are named by the descriptor
 * number they had in the process that saved the wiring (eventfds cannot be
 * saved, their counters can: see `@rxvmm/eventfd`'s `EventFdState`); the
 * restoring VMM maps each to the eventfd it made for it.
 */
import type { IrqRoutingEntry } from './irq-routing.js';

/** The `version` of the wiring this code writes and reads. */
export type VmWiringVersion = 1;

/** One memory slot (KVM_SET_USER_MEMORY_REGION): its layout; its bytes are saved separately. */
export interface MemorySlotWiring {
  slot: number;
  guestPhysAddr: string;
  size: number;
  /** KVM_MEM_* flags. */
  flags: number;
}

/** One assigned ioeventfd (KVM_IOEVENTFD without DEASSIGN). */
export interface IoEventFdWiring {
  addr: string;
  len: number;
  /** The datamatch value with IOEVENTFD_FLAG_DATAMATCH, else null. */
  datamatch: string | null;
  /** IOEVENTFD_FLAG_* as assigned (never DEASSIGN). */
  flags: number;
  /** The eventfd's descriptor number in the saving process. */
  eventfd: number;
}

/** One assigned irqfd (KVM_IRQFD without DEASSIGN). */
export interface IrqFdWiring {
  gsi: number;
  /** IRQFD_FLAG_* as assigned (RESAMPLE or 0, never DEASSIGN). */
  flags: number;
  /** The eventfd's descriptor number in the saving process. */
  eventfd: number;
  /** The resamplefd's descriptor number with IRQFD_FLAG_RESAMPLE, else null. */
  resamplefd: number | null;
}

/** `Vm.wiring()`: everything a fresh VM needs to be wired as this one is. */
export interface VmWiring {
  version: VmWiringVersion;
  /** Memory slots by slot number. */
  memory: MemorySlotWiring[];
  /** KVM_CREATE_IRQCHIP was called. */
  irqchip: boolean;
  /** The last KVM_SET_GSI_ROUTING table, or null while the irqchip's default table is in force. */
  gsiRouting: { entries: IrqRoutingEntry[]; flags: number } | null;
  /** Assigned ioeventfds, in assignment order. */
  ioeventfds: IoEventFdWiring[];
  /** Assigned irqfds, in assignment order. */
  irqfds: IrqFdWiring[];
}
