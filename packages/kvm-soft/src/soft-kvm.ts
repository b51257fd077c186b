import { errnoError } from '@rxvmm/errno';
import type { Capability, Kvm } from '@rxvmm/kvm';
import { SoftVm } from './soft-vm.js';

/**
 * SoftKvm: the KVM backend interface in pure TypeScript. Its kernel side is
 * made of @rxvmm/io-bus, @rxvmm/ioeventfd and @rxvmm/irqfd plus a small x86
 * interrupt controller model; its vCPUs run guest programs written in
 * TypeScript (see `Guest`). Eventfds are `SoftEventFd`s: any other open
 * descriptor, a kernel `EventFd` included, is `EINVAL` ("not an eventfd" to
 * this kernel), anything else `EBADF`.
 */
export class SoftKvm implements Kvm {
  readonly backend = 'soft';
  #vms = new Set<SoftVm>();
  #closed = false;

  apiVersion(): number {
    return 12;
  }

  checkExtension(capability: Capability): boolean {
    return [
      'irqchip',
      'irqfd',
      'irqfd-resample',
      'ioeventfd',
      'ioeventfd-any-length',
      'irq-routing',
      'signal-msi',
      'user-memory',
      'immediate-exit',
    ].includes(capability);
  }

  createVm(): SoftVm {
    if (this.#closed) throw errnoError('EBADF', 'SoftKvm is closed');
    const vm = new SoftVm((v) => this.#vms.delete(v));
    this.#vms.add(vm);
    return vm;
  }

  /** Closes the handle; VMs stay usable until closed, as with /dev/kvm. */
  close(): void {
    this.#closed = true;
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Opens SoftKvm. */
export function openSoftKvm(): SoftKvm {
  return new SoftKvm();
}
