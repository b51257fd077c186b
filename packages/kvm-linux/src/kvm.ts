/**
 * `openKvm()`: the /dev/kvm system handle, with errors that say what to do
 * when the device is missing or not usable.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { type ErrnoError, errnoError } from '@rxvmm/errno';
import type { Capability, Kvm } from '@rxvmm/kvm';
import * as sys from '@rxvmm/sys';
import {
  KVM_API_VERSION,
  KVM_CAP_IMMEDIATE_EXIT,
  KVM_CAP_IOEVENTFD,
  KVM_CAP_IOEVENTFD_ANY_LENGTH,
  KVM_CAP_IRQ_ROUTING,
  KVM_CAP_IRQCHIP,
  KVM_CAP_IRQFD,
  KVM_CAP_IRQFD_RESAMPLE,
  KVM_CAP_SIGNAL_MSI,
  KVM_CAP_USER_MEMORY,
  KVM_CHECK_EXTENSION,
  KVM_CREATE_VM,
  KVM_GET_API_VERSION,
  KVM_GET_VCPU_MMAP_SIZE,
} from './abi.js';
import { msrIndexList } from './vcpu-state.js';
import { LinuxVm, type VcpuOptions } from './vm.js';

/** Options of `openKvm`; they apply to every VM and vCPU made through the handle. */
export interface KvmOptions {
  /** See `VcpuOptions.mainThreadRun` (a `createVcpu` option overrides it). */
  mainThreadRun?: VcpuOptions['mainThreadRun'];
}

const CAPABILITIES: Record<Capability, number> = {
  irqchip: KVM_CAP_IRQCHIP,
  irqfd: KVM_CAP_IRQFD,
  'irqfd-resample': KVM_CAP_IRQFD_RESAMPLE,
  ioeventfd: KVM_CAP_IOEVENTFD,
  'ioeventfd-any-length': KVM_CAP_IOEVENTFD_ANY_LENGTH,
  'irq-routing': KVM_CAP_IRQ_ROUTING,
  'signal-msi': KVM_CAP_SIGNAL_MSI,
  'user-memory': KVM_CAP_USER_MEMORY,
  'immediate-exit': KVM_CAP_IMMEDIATE_EXIT,
};

/** Turns the open(2) failure of the KVM device into an error that says what to do. */
function openError(path: string, error: NodeJS.ErrnoException): ErrnoError {
  switch (error.code) {
    case 'ENOENT':
      return errnoError(
        'ENOENT',
        `${path} does not exist: KVM is not available on this machine. Enable hardware virtualization ` +
          '(VT-x/AMD-V, or nested virtualization in a VM) and load the module (modprobe kvm_intel or kvm_amd), ' +
          'or use SoftKvm from @rxvmm/kvm-soft.',
        'open',
      );
    case 'EACCES':
    case 'EPERM':
      return errnoError(
        'EACCES',
        `${path} exists but this user may not open it read-write: add the user to the group owning it ` +
          '(usually `sudo usermod -aG kvm $USER`, then log in again) or run as root.',
        'open',
      );
    case 'ENXIO':
    case 'ENODEV':
      return errnoError(
        'ENXIO',
        `${path} has no KVM behind it (the module is loaded but the CPU's virtualization is unavailable or disabled in the firmware).`,
        'open',
      );
    default: {
      const wrapped = errnoError('EIO', `cannot open ${path}: ${error.message}`, 'open');
      wrapped.code = error.code ?? 'EIO';
      return wrapped;
    }
  }
}

/** `/dev/kvm` opened (`openKvm()`): the `Kvm` of the interface on the real kernel. */
export class LinuxKvm implements Kvm {
  readonly backend = 'linux';
  readonly path: string;
  readonly fd: number;
  /** Size of each vCPU's kvm_run mapping. */
  readonly vcpuMmapSize: number;
  readonly #vms = new Set<LinuxVm>();
  #closed = false;

  readonly #options: KvmOptions;

  constructor(path = '/dev/kvm', options: KvmOptions = {}) {
    this.path = path;
    this.#options = options;
    try {
      this.fd = openSync(path, constants.O_RDWR); // libuv adds O_CLOEXEC;
    } catch (error) {
      throw openError(path, error as NodeJS.ErrnoException);
    }
    try {
      let version: number;
      try {
        version = sys.ioctl(this.fd, KVM_GET_API_VERSION);
      } catch (error) {
        throw errnoError(
          'EINVAL',
          `${path} is not a KVM device (KVM_GET_API_VERSION: ${(error as Error).message}): ` +
            'open the KVM character device (10:232, /dev/kvm from the kvm module) or use SoftKvm from @rxvmm/kvm-soft.',
        );
      }
      if (version !== KVM_API_VERSION) {
        throw errnoError(
          'EINVAL',
          `${path} speaks KVM API version ${version}; rxvmm needs ${KVM_API_VERSION}`,
        );
      }
      this.vcpuMmapSize = sys.ioctl(this.fd, KVM_GET_VCPU_MMAP_SIZE);
    } catch (error) {
      closeSync(this.fd);
      throw error;
    }
  }

  #check(): void {
    if (this.#closed) throw errnoError('EBADF', 'KVM handle is closed');
  }

  apiVersion(): number {
    this.#check();
    return sys.ioctl(this.fd, KVM_GET_API_VERSION);
  }

  checkExtension(capability: Capability): boolean {
    this.#check();
    const cap = CAPABILITIES[capability];
    if (cap === undefined) throw errnoError('EINVAL', `unknown capability ${String(capability)}`);
    return sys.ioctl(this.fd, KVM_CHECK_EXTENSION, cap) > 0;
  }

  /**
   * KVM_GET_MSR_INDEX_LIST: the MSRs KVM saves and restores for a vCPU (what `LinuxVcpu.state()`
   * and `VcpuRunner.stop({ saveState })` read), ascending.
   */
  msrIndexList(): number[] {
    this.#check();
    return msrIndexList(this.fd);
  }

  createVm(): LinuxVm {
    this.#check();
    const fd = sys.ioctl(this.fd, KVM_CREATE_VM, 0);
    const vm = new LinuxVm(fd, this.vcpuMmapSize, () => this.#vms.delete(vm), this.#options);
    this.#vms.add(vm);
    return vm;
  }

  /** Closes /dev/kvm and every VM created through this handle. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const vm of [...this.#vms]) vm.close();
    closeSync(this.fd);
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Opens the KVM device. Throws an `ErrnoError` with `.code` `ENOENT` (no such
 * device: enable/load KVM or use SoftKvm), `EACCES` (no permission: join the
 * kvm group or run as root) or `ENXIO` (no virtualization behind it).
 */
export function openKvm(path = '/dev/kvm', options: KvmOptions = {}): LinuxKvm {
  return new LinuxKvm(path, options);
}

/** Whether /dev/kvm can be opened here, and if not, why (for test skips and fallbacks). */
export function kvmAvailability(
  path = '/dev/kvm',
): { available: true } | { available: false; reason: string; code: string } {
  try {
    openKvm(path).close();
    return { available: true };
  } catch (error) {
    return { available: false, reason: (error as Error).message, code: String((error as ErrnoError).code) };
  }
}
