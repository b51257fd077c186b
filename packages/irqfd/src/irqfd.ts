import type { KernelEventFd } from '@rxvmm/eventfd';
import { IRQFD_RESAMPLE_IRQ_SOURCE_ID, USERSPACE_IRQ_SOURCE_ID } from './constants.js';
import type { IrqRouter } from './irq-router.js';

/** Runs a deferred injection (the kernel's `schedule_work`). */
export type Scheduler = (work: () => void) => void;

/**
 * A resampler (`struct kvm_kernel_irqfd_resampler`): one per GSI with
 * resampling irqfds. On the guest's EOI it de-asserts the resample source of
 * the line and signals every member's resamplefd.
 */
export class Resampler {
  readonly members = new Set<IrqFd>();
  readonly #unregister: () => void;
  readonly #unregisterResampler: () => void;

  constructor(
    readonly gsi: number,
    private readonly router: IrqRouter,
  ) {
    this.#unregister = router.registerAckNotifier({ gsi, acked: () => this.#acked() });
    this.#unregisterResampler = router.registerResampler({ gsi, notify: () => this.#notify() });
  }

  /** irqfd_resampler_ack(): de-assert, then notify. */
  #acked(): void {
    this.router.setIrq(IRQFD_RESAMPLE_IRQ_SOURCE_ID, this.gsi, false);
    this.#notify();
  }

  /** irqfd_resampler_notify(): signal every member's resamplefd. */
  #notify(): void {
    for (const irqfd of [...this.members]) irqfd.resamplefd?.signal(1n);
  }

  /** Unregisters and de-asserts the line (the last resampling irqfd of the GSI went away). */
  shutdown(): void {
    this.#unregister();
    this.#unregisterResampler();
    this.router.setIrq(IRQFD_RESAMPLE_IRQ_SOURCE_ID, this.gsi, false);
  }
}

/**
 * One assigned irqfd (`struct kvm_kernel_irqfd`). Its wait-queue callback
 * consumes the eventfd's counter and schedules one injection, so signals that
 * arrive before the injection runs coalesce into one; a hang-up detaches it.
 * The routes are looked up when the injection runs, so route changes are
 * followed and a GSI without a route drops the signal.
 */
export class IrqFd {
  #pending = false;
  #active = true;
  #unwatch: () => void = () => {};
  /** Injections performed (for observation and tests). */
  injections = 0;

  constructor(
    readonly eventfd: KernelEventFd,
    readonly gsi: number,
    readonly resamplefd: KernelEventFd | undefined,
    readonly resampler: Resampler | undefined,
    private readonly router: IrqRouter,
    private readonly schedule: Scheduler,
    private readonly onHangup: (irqfd: IrqFd) => void,
  ) {}

  get active(): boolean {
    return this.#active;
  }

  /** Hooks the eventfd's wait queue (irqfd_wakeup). */
  start(initiallyReadable: boolean): void {
    this.#unwatch = this.eventfd.watch({
      readable: () => {
        this.eventfd.drain(); // eventfd_ctx_do_read: the irqfd consumes the counter
        this.#scheduleInject();
      },
      hangup: () => this.onHangup(this),
    });
    // vfs_poll at assign time: already signalled means inject at once (counter left as is).
    if (initiallyReadable) this.#scheduleInject();
  }

  #scheduleInject(): void {
    if (this.#pending || !this.#active) return;
    this.#pending = true;
    this.schedule(() => this.#runInject());
  }

  #runInject(): void {
    if (!this.#pending || !this.#active) return;
    this.#pending = false;
    this.injections++;
    if (this.resampler) {
      // Level: assert and leave asserted until the guest's EOI (Resampler).
      this.router.setIrq(IRQFD_RESAMPLE_IRQ_SOURCE_ID, this.gsi, true);
    } else {
      // Edge: a pulse, from the userspace source like the kernel's irqfd_inject.
      this.router.setIrq(USERSPACE_IRQ_SOURCE_ID, this.gsi, true);
      this.router.setIrq(USERSPACE_IRQ_SOURCE_ID, this.gsi, false);
    }
  }

  /** irqfd_shutdown: stops watching, flushes a queued injection, leaves the resampler. */
  shutdown(): void {
    if (!this.#active) return;
    this.#unwatch();
    if (this.#pending) this.#runInject(); // flush_work(&irqfd->inject)
    this.#active = false;
    if (this.resampler) {
      this.resampler.members.delete(this);
    }
  }
}
