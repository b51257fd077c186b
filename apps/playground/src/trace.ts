/**
 * What the page shows: each hop of a request as an event, and each request as
 * the path its events took. The machine emits them; the page and the tests
 * read them.
 */

/** A hop on a request's path (or around it). */
export type Stage =
  /** The guest writes 0 to QueueNotify: the doorbell. */
  | 'doorbell'
  /** The ioeventfd on QueueNotify matched inside `run()`: the kick eventfd is signalled, no exit. */
  | 'ioeventfd'
  /** `run()` returned an exit the VMM handles (see `exit`). */
  | 'exit'
  /** The device is notified (`transport.notifyQueue`, or a QueueNotify exit through the register file). */
  | 'kick'
  /** The serving loop popped the chain and the device read the request. */
  | 'pop'
  /** The device completed the chain: its used ring entry. */
  | 'used'
  /** The device signalled a used buffer: InterruptStatus bit 0, the transport's interrupt event. */
  | 'call'
  /** The call eventfd was written: the irqfd injected the MSI, no VMM code on the way. */
  | 'irqfd'
  /** irqfd off: the VMM injected the interrupt itself (KVM_IRQ_LINE on the MSI-routed GSI). */
  | 'irq-line'
  /** The guest took the device's interrupt. */
  | 'interrupt'
  /** The guest checked the reply. */
  | 'verified'
  /** The guest slept (`hlt` with nothing pending): `run()` returned and the VMM loop waits. */
  | 'sleep'
  /** The VMM let the guest send one more request (mailbox), with a tick MSI if it was asleep. */
  | 'grant'
  /** Something went wrong (a device reset, a guest that stopped). */
  | 'error';

/** Why an exit happened. */
export type ExitCause = 'doorbell' | 'interrupt-status' | 'interrupt-ack' | 'setup' | 'other';

export interface TraceEvent {
  /** Order of the event, from 1. */
  readonly seq: number;
  /** The request it belongs to (-1: the driver's set-up, or none). */
  readonly request: number;
  readonly stage: Stage;
  /** One sentence saying what happened. */
  readonly text: string;
  /** For `exit`: why. */
  readonly exit?: ExitCause;
}

/** One request from doorbell to verification. */
export interface RequestRecord {
  readonly id: number;
  /** The stages it went through, in order (an exit once per exit). */
  readonly path: Stage[];
  /** Exits it cost (its doorbell's, if any, and its interrupt handler's). */
  exits: number;
  /** Whether its doorbell was absorbed by the ioeventfd (else it was an exit). */
  absorbed: boolean;
  /** How its interrupt was injected. */
  injectedBy: 'irqfd' | 'vmm' | undefined;
  /** The guest's verdict, once checked. */
  ok: boolean | undefined;
  reply: string | undefined;
}

/** The counters the page shows. */
export interface Counters {
  /** `run()` returns the VMM had to handle (MMIO and PIO exits). */
  exits: number;
  /** Of those, before the driver finished setting the device up. */
  setupExits: number;
  /** Of those, while requests ran. */
  requestExits: number;
  /** Exits by cause, after set-up. */
  doorbellExits: number;
  interruptStatusExits: number;
  interruptAckExits: number;
  /** Doorbells the guest rang. */
  doorbells: number;
  /** Doorbells the ioeventfd absorbed (no exit). */
  absorbed: number;
  /** Device notifications (kicks reaching the device). */
  kicks: number;
  /** Chains the device completed. */
  chains: number;
  /** Device interrupts injected by the irqfd. */
  irqfdInjections: number;
  /** Device interrupts injected by the VMM (KVM_IRQ_LINE). */
  vmmInjections: number;
  /** Device interrupts the guest took. */
  guestInterrupts: number;
  /** Grants, and the tick MSIs that woke a guest waiting for one. */
  grants: number;
  ticks: number;
  /** Times the guest slept (`run()` returned `intr`). */
  sleeps: number;
  /** Requests sent, verified and failed (the guest's mailbox). */
  sent: number;
  verified: number;
  failed: number;
}

export function emptyCounters(): Counters {
  return {
    exits: 0,
    setupExits: 0,
    requestExits: 0,
    doorbellExits: 0,
    interruptStatusExits: 0,
    interruptAckExits: 0,
    doorbells: 0,
    absorbed: 0,
    kicks: 0,
    chains: 0,
    irqfdInjections: 0,
    vmmInjections: 0,
    guestInterrupts: 0,
    grants: 0,
    ticks: 0,
    sleeps: 0,
    sent: 0,
    verified: 0,
    failed: 0,
  };
}

/** Exits per verified request, counting only exits after set-up (0 before the first). */
export function exitsPerRequest(c: Counters): number {
  return c.verified + c.failed === 0 ? 0 : c.requestExits / (c.verified + c.failed);
}
