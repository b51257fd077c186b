import { errnoError } from '@rxvmm/errno';
import { type EventFdResolver, type KernelEventFd, resolveSoftEventFd } from '@rxvmm/eventfd';
import { IRQFD_FLAG_DEASSIGN, IRQFD_FLAG_RESAMPLE } from '@rxvmm/kvm';
import type { IrqRouter } from './irq-router.js';
import { IrqFd, Resampler, type Scheduler } from './irqfd.js';

/** The fields of `struct kvm_irqfd`. */
export interface KvmIrqFd {
  fd: number;
  gsi: number;
  flags?: number;
  resamplefd?: number;
}

/** Options of `new IrqFds(router, options)`. */
export interface IrqFdsOptions {
  /** fd → eventfd (`EBADF` / `EINVAL`); default: open SoftEventFds. */
  resolve?: EventFdResolver;
  /** Where injections run; default `queueMicrotask` (the kernel's workqueue). */
  schedule?: Scheduler;
  /**
   * Whether the VM has an in-kernel irqchip (irqfds need one: `EINVAL` before
   * KVM_CREATE_IRQCHIP on x86). Default: always.
   */
  hasIrqchip?: () => boolean;
}

/** Has the eventfd a non-zero counter? (vfs_poll → EPOLLIN at assign time.) */
function isReadable(efd: KernelEventFd): boolean {
  let readable = false;
  // A watcher is called synchronously only on change, so peek by draining and re-signalling.
  const n = efd.drain();
  if (n > 0n) {
    readable = true;
    efd.signal(n);
  }
  return readable;
}

/**
 * A VM's irqfds (`kvm->irqfds`): KVM_IRQFD assign/deassign with the kernel's
 * checks and errno, level-triggered resampling, hang-up detach.
 */
export class IrqFds implements Disposable {
  readonly #router: IrqRouter;
  readonly #resolve: EventFdResolver;
  readonly #schedule: Scheduler;
  readonly #hasIrqchip: () => boolean;
  #items: IrqFd[] = [];
  #resamplers = new Map<number, Resampler>();

  constructor(router: IrqRouter, options: IrqFdsOptions = {}) {
    this.#router = router;
    this.#resolve = options.resolve ?? resolveSoftEventFd;
    // Called as a plain function: a browser refuses queueMicrotask with another `this`.
    this.#schedule = options.schedule ?? ((task) => queueMicrotask(task));
    this.#hasIrqchip = options.hasIrqchip ?? (() => true);
  }

  /** The assigned irqfds. */
  list(): readonly IrqFd[] {
    return [...this.#items];
  }

  /** KVM_IRQFD. Throws ErrnoError. */
  irqfd(args: KvmIrqFd): void {
    const flags = args.flags ?? 0;
    if (!Number.isInteger(flags) || flags < 0 || flags & ~(IRQFD_FLAG_DEASSIGN | IRQFD_FLAG_RESAMPLE)) {
      throw errnoError('EINVAL', `unknown irqfd flags 0x${flags.toString(16)}`);
    }
    if (flags & IRQFD_FLAG_DEASSIGN) this.deassign(args);
    else this.assign(args);
  }

  /** kvm_irqfd_assign(). */
  assign(args: KvmIrqFd): void {
    const flags = args.flags ?? 0;
    if (!this.#hasIrqchip())
      throw errnoError('EINVAL', 'irqfd needs an in-kernel irqchip (KVM_CREATE_IRQCHIP)');
    const eventfd = this.#resolve(args.fd);
    let resamplefd: KernelEventFd | undefined;
    if (flags & IRQFD_FLAG_RESAMPLE) resamplefd = this.#resolve(args.resamplefd ?? -1);
    if (this.#items.some((i) => i.eventfd === eventfd))
      throw errnoError('EBUSY', `eventfd ${args.fd} is already an irqfd`);
    const gsi = args.gsi >>> 0;
    let resampler: Resampler | undefined;
    if (resamplefd) {
      resampler = this.#resamplers.get(gsi);
      if (!resampler) {
        resampler = new Resampler(gsi, this.#router);
        this.#resamplers.set(gsi, resampler);
      }
    }
    const irqfd = new IrqFd(eventfd, gsi, resamplefd, resampler, this.#router, this.#schedule, (i) =>
      this.#detach(i),
    );
    resampler?.members.add(irqfd);
    this.#items.push(irqfd);
    irqfd.start(isReadable(eventfd));
  }

  /** kvm_irqfd_deassign(): detaches every irqfd with this eventfd and GSI; none is fine. */
  deassign(args: KvmIrqFd): void {
    const eventfd = this.#resolve(args.fd);
    const gsi = args.gsi >>> 0;
    for (const irqfd of this.#items.filter((i) => i.eventfd === eventfd && i.gsi === gsi))
      this.#detach(irqfd);
  }

  /** VM teardown. */
  close(): void {
    for (const irqfd of [...this.#items]) this.#detach(irqfd);
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #detach(irqfd: IrqFd): void {
    const i = this.#items.indexOf(irqfd);
    if (i < 0) return;
    this.#items.splice(i, 1);
    irqfd.shutdown();
    const r = irqfd.resampler;
    if (r && r.members.size === 0 && this.#resamplers.get(r.gsi) === r) {
      this.#resamplers.delete(r.gsi);
      r.shutdown();
    }
  }
}
