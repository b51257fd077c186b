/**
 * A vCPU on /dev/kvm. `run()` is KVM_RUN; the `kvm_run` area is the vCPU fd's
 * mmap, read in place: exit data (`data`) is a live view into it, so the answer
 * to an `in` or an MMIO read written there reaches the guest on the next run.
 *
 * KVM asks for vCPU ioctls from the thread that created the vCPU: the first
 * ioctl from another thread pays for the change (KVM_RUN records its new thread).
 * Create it on the thread that runs it (see runner/ for worker threads), or move
 * it once, whole, with `handOver()` and `LinuxVcpu.adopt()` (as Firecracker makes
 * its vCPUs on the VMM thread and runs them on their own).
 */
import { errnoError } from '@rxvmm/errno';
import {
  EXIT_FAIL_ENTRY,
  EXIT_HLT,
  EXIT_INTERNAL_ERROR,
  EXIT_INTR,
  EXIT_IO,
  EXIT_IO_OUT,
  EXIT_MMIO,
  EXIT_SHUTDOWN,
  EXIT_SYSTEM_EVENT,
  type Regs,
  type Sregs,
  type Vcpu,
  type VcpuExit,
} from '@rxvmm/kvm';
import * as sys from '@rxvmm/sys';
import {
  KVM_CREATE_VCPU,
  KVM_GET_LAPIC,
  KVM_GET_REGS,
  KVM_GET_SREGS,
  KVM_RUN,
  KVM_SET_LAPIC,
  KVM_SET_REGS,
  KVM_SET_SREGS,
  LapicStateLayout,
  RunLayout as R,
} from './abi.js';
import { KickTarget } from './kick.js';
import { warnMainThreadRun } from './main-thread-warning.js';
import {
  decodeRegs,
  decodeSregs,
  encodeRegs,
  encodeSregsInto,
  newRegsBuffer,
  newSregsBuffer,
} from './structs.js';
import {
  checkLinuxVcpuState,
  type LinuxVcpuState,
  loadVcpuState,
  takeVcpuState,
  type VcpuStateContext,
} from './vcpu-state.js';

const EINTR = 4;
const INTR: VcpuExit = Object.freeze({ kind: 'intr' });
const HLT: VcpuExit = Object.freeze({ kind: 'hlt' });
const SHUTDOWN: VcpuExit = Object.freeze({ kind: 'shutdown' });

/**
 * A vCPU moved between threads of one process (`vcpu.handOver()` → `LinuxVcpu.adopt()`): its fd
 * and its `kvm_run` mapping, both process-wide. Plain data (it crosses to a worker as is).
 */
export interface VcpuHandover {
  id: number;
  fd: number;
  runAddress: bigint;
  runSize: number;
}

/** A vCPU on `/dev/kvm` (`vm.createVcpu(id)`): the `Vcpu` of the interface, plus the LAPIC page and the saved state. Use it on the thread that created (or adopted) it. */
export class LinuxVcpu implements Vcpu {
  /** Set only while `adopt()` constructs: the vCPU to take instead of creating one. */
  static #adopting: VcpuHandover | undefined;

  readonly id: number;
  readonly fd: number;
  /** Kernel thread id of the thread that created or adopted it: the one that runs it. */
  readonly ownerTid: number;
  readonly runAddress: bigint;
  readonly runSize: number;
  readonly #runBuffer: ArrayBuffer;
  readonly #run: Uint8Array;
  readonly #view: DataView;
  readonly #mmioData: Uint8Array[];
  #kickTarget: KickTarget | undefined;
  readonly #vmFd: number;
  #onClose: (() => void) | undefined;
  #closed = false;
  /** Set on the main thread: what of its VM's wiring needs the event loop (undefined: nothing yet). */
  #mainThreadWiring: (() => string | undefined) | undefined;

  /**
   * KVM_CREATE_VCPU on `vmFd` and the mmap of its kvm_run area (`mmapSize` from KVM_GET_VCPU_MMAP_SIZE).
   * `mainThreadWiring` (given by `LinuxVm.createVcpu` on the main thread) names what of the VM needs
   * the event loop, so the first `run()` after it exists warns once.
   */
  constructor(
    vmFd: number,
    id: number,
    mmapSize: number,
    onClose?: () => void,
    mainThreadWiring?: () => string | undefined,
  ) {
    if (!Number.isInteger(id) || id < 0)
      throw errnoError('EINVAL', `vCPU id must be a non-negative integer: ${id}`);
    this.id = id;
    this.#vmFd = vmFd;
    const adopting = LinuxVcpu.#adopting;
    if (adopting) {
      this.fd = adopting.fd;
      this.runSize = adopting.runSize;
      this.runAddress = adopting.runAddress;
    } else {
      this.fd = sys.ioctl(vmFd, KVM_CREATE_VCPU, id);
      try {
        this.runSize = mmapSize;
        this.runAddress = sys.mmap(mmapSize, sys.PROT_READ | sys.PROT_WRITE, sys.MAP_SHARED, this.fd, 0n);
      } catch (error) {
        sys.close(this.fd);
        throw error;
      }
    }
    this.ownerTid = sys.gettid();
    this.#runBuffer = sys.mappingBuffer(this.runAddress, mmapSize);
    this.#run = new Uint8Array(this.#runBuffer);
    this.#view = new DataView(this.#runBuffer);
    // MMIO data lives at a fixed place: one cached view per access length.
    this.#mmioData = [0, 1, 2, 3, 4, 5, 6, 7, 8].map(
      (len) => new Uint8Array(this.#runBuffer, R.mmio_data, len),
    );
    this.#onClose = onClose;
    this.#mainThreadWiring = mainThreadWiring;
  }

  /**
   * Takes a vCPU another thread of this process handed over (`handOver()` there): no new vCPU, the
   * same fd and `kvm_run`; this object owns them from now on (`close()` releases them). `vmFd` is
   * its VM's fd. The exit `kvm_run` holds is still there (`exit()`), to be answered before `run()`.
   */
  static adopt(vmFd: number, handover: VcpuHandover): LinuxVcpu {
    LinuxVcpu.#adopting = handover;
    try {
      return new LinuxVcpu(vmFd, handover.id, handover.runSize);
    } finally {
      LinuxVcpu.#adopting = undefined;
    }
  }

  /**
   * Gives this vCPU to another thread of this process (`LinuxVcpu.adopt()` there): this object is
   * closed without closing the vCPU, whose fd and `kvm_run` stay for the adopter to release. Call
   * it between runs; the exit the last `run()` returned waits in `kvm_run` for the adopter.
   */
  handOver(): VcpuHandover {
    this.#check();
    this.#closed = true;
    this.#kickTarget?.retire();
    sys.detachBuffer(this.#runBuffer);
    this.#onClose?.();
    this.#onClose = undefined;
    return { id: this.id, fd: this.fd, runAddress: this.runAddress, runSize: this.runSize };
  }

  get closed(): boolean {
    return this.#closed;
  }

  #check(): void {
    if (this.#closed) throw errnoError('EBADF', `vCPU ${this.id} is closed`);
  }

  /** KVM_GET_REGS. */
  getRegs(): Regs {
    this.#check();
    const bytes = newRegsBuffer();
    sys.ioctl(this.fd, KVM_GET_REGS, bytes);
    return decodeRegs(bytes);
  }

  /** KVM_SET_REGS. */
  setRegs(regs: Regs): void {
    this.#check();
    sys.ioctl(this.fd, KVM_SET_REGS, encodeRegs(regs));
  }

  /** KVM_GET_SREGS. */
  getSregs(): Sregs {
    this.#check();
    const bytes = newSregsBuffer();
    sys.ioctl(this.fd, KVM_GET_SREGS, bytes);
    return decodeSregs(bytes);
  }

  /** KVM_SET_SREGS. */
  setSregs(sregs: Sregs): void {
    this.#check();
    // Read first: the struct also carries the pending-interrupt bitmap, which
    // the interface does not expose and must not be clobbered.
    const bytes = newSregsBuffer();
    sys.ioctl(this.fd, KVM_GET_SREGS, bytes);
    sys.ioctl(this.fd, KVM_SET_SREGS, encodeSregsInto(bytes, sregs));
  }

  /**
   * KVM_GET_LAPIC: the local APIC's register page (1 KiB, registers at their MMIO offsets, e.g.
   * SVR at 0xf0). Needs the in-kernel irqchip (`vm.createIrqChip()` before this vCPU was created).
   */
  getLapic(): Uint8Array {
    this.#check();
    const bytes = new Uint8Array(LapicStateLayout.size);
    this.#lapicIoctl('KVM_GET_LAPIC', KVM_GET_LAPIC, bytes);
    return bytes;
  }

  /** KVM_SET_LAPIC: loads the local APIC's register page (as `getLapic()` returns it). */
  setLapic(regs: Uint8Array): void {
    this.#check();
    if (regs.byteLength !== LapicStateLayout.size)
      throw errnoError(
        'EINVAL',
        `the LAPIC register page is ${LapicStateLayout.size} bytes, got ${regs.byteLength}`,
      );
    this.#lapicIoctl('KVM_SET_LAPIC', KVM_SET_LAPIC, regs);
  }

  /**
   * The whole vCPU state as plain data (registers, special registers, XSAVE/FPU, XCRs, the
   * saveable MSRs in `msrIndices` this vCPU can read, local APIC, vCPU events, MP state). On the
   * vCPU's own thread, between runs: a `VcpuRunner` takes it in its worker (`stop({ saveState })`).
   * `msrIndices` is `LinuxKvm.msrIndexList()`.
   */
  state(msrIndices: readonly number[]): LinuxVcpuState {
    this.#check();
    this.#completePendingIo();
    return takeVcpuState(this.#stateContext(msrIndices));
  }

  /**
   * An MMIO or PIO exit is finished by the next KVM_RUN (the answer to a read reaches the guest's
   * register then): KVM's API asks for a KVM_RUN with immediate_exit before saving, which
   * completes it and returns at once (EINTR) without running guest code.
   */
  #completePendingIo(): void {
    this.#run[R.immediate_exit] = 1;
    try {
      sys.ioctlIntr(this.fd, KVM_RUN);
    } finally {
      this.#run[R.immediate_exit] = 0;
    }
  }

  /**
   * Loads a `state()` into this fresh vCPU of a VM restored the same way (wiring, then the VM's
   * `restoreState`). Checked whole first (`EINVAL`, nothing loaded); then each part is one
   * ioctl, whose errno (naming the part) is thrown if the kernel refuses it.
   */
  restoreState(state: LinuxVcpuState): void {
    this.#check();
    const checked = checkLinuxVcpuState(state);
    if (checked.id !== this.id)
      throw errnoError('EINVAL', `the state of vCPU ${checked.id} restored into vCPU ${this.id}`);
    loadVcpuState(this.#stateContext([]), checked);
  }

  #stateContext(msrIndices: readonly number[]): VcpuStateContext {
    return {
      fd: this.fd,
      vmFd: this.#vmFd,
      id: this.id,
      msrIndices,
      getRegs: () => this.getRegs(),
      getSregs: () => this.getSregs(),
      setRegs: (regs) => this.setRegs(regs),
      setSregs: (sregs) => this.setSregs(sregs),
      getLapic: () => this.getLapic(),
      setLapic: (bytes) => this.setLapic(bytes),
    };
  }

  #lapicIoctl(name: string, request: number, bytes: Uint8Array): void {
    try {
      sys.ioctl(this.fd, request, bytes);
    } catch (error) {
      // The kernel's only EINVAL here: no local APIC in the kernel for this vCPU.
      if ((error as { code?: string }).code === 'EINVAL')
        throw errnoError(
          'EINVAL',
          `${name}: vCPU ${this.id} has no in-kernel local APIC: call vm.createIrqChip() before vm.createVcpu()`,
          'ioctl',
        );
      throw error;
    }
  }

  run(): VcpuExit {
    this.#check();
    if (this.#mainThreadWiring) {
      const wiring = this.#mainThreadWiring();
      if (wiring !== undefined) {
        this.#mainThreadWiring = undefined;
        warnMainThreadRun(wiring);
      }
    }
    const r = sys.ioctlIntr(this.fd, KVM_RUN);
    if (r === -EINTR) {
      // The kick was consumed: let the next run enter the guest again.
      this.#run[R.immediate_exit] = 0;
      return INTR;
    }
    return this.#decodeExit();
  }

  /**
   * The exit `kvm_run` holds now: what the last `run()` returned (on any thread: after `adopt()`,
   * the one the previous owner left unanswered). Its `data` is the same live view.
   */
  exit(): VcpuExit {
    this.#check();
    return this.#decodeExit();
  }

  #decodeExit(): VcpuExit {
    const view = this.#view;
    switch (view.getUint32(R.exit_reason, true)) {
      case EXIT_IO: {
        const size = this.#run[R.io_size] ?? 0;
        const count = view.getUint32(R.io_count, true);
        const offset = Number(view.getBigUint64(R.io_data_offset, true));
        return {
          kind: 'io',
          direction: this.#run[R.io_direction] === EXIT_IO_OUT ? 'out' : 'in',
          port: view.getUint16(R.io_port, true),
          size,
          count,
          data: new Uint8Array(this.#runBuffer, offset, size * count),
        };
      }
      case EXIT_MMIO: {
        const len = view.getUint32(R.mmio_len, true);
        return {
          kind: 'mmio',
          isWrite: this.#run[R.mmio_is_write] !== 0,
          addr: view.getBigUint64(R.mmio_phys_addr, true),
          len,
          data: this.#mmioData[len] ?? new Uint8Array(this.#runBuffer, R.mmio_data, Math.min(len, 8)),
        };
      }
      case EXIT_HLT:
        return HLT;
      case EXIT_SHUTDOWN:
        return SHUTDOWN;
      case EXIT_INTR:
        this.#run[R.immediate_exit] = 0;
        return INTR;
      case EXIT_INTERNAL_ERROR:
        return { kind: 'internal-error', suberror: view.getUint32(R.internal_suberror, true) };
      case EXIT_FAIL_ENTRY:
        return { kind: 'fail-entry', reason: view.getBigUint64(R.fail_entry_reason, true) };
      case EXIT_SYSTEM_EVENT:
        return { kind: 'system-event', type: view.getUint32(R.system_event_type, true) };
      default:
        return { kind: 'unknown', reason: view.getUint32(R.exit_reason, true) };
    }
  }

  /**
   * Makes the next (or current) `run()` return `{ kind: 'intr' }`. On the
   * vCPU's own thread setting `immediate_exit` is enough (it is not inside
   * KVM_RUN while JavaScript runs); other threads use `kickSlot()`.
   */
  kick(): void {
    if (this.#closed) return;
    Atomics.store(this.#run, R.immediate_exit, 1);
  }

  /** On /dev/kvm a kicked vCPU is runnable again at once. */
  whenRunnable(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * A SharedArrayBuffer through which other threads kick this vCPU (pass it to
   * `new Kicker(buffer)` there). Call on the vCPU's thread.
   */
  kickSlot(): SharedArrayBuffer {
    this.#check();
    if (!this.#kickTarget) {
      this.#kickTarget = new KickTarget();
      this.#kickTarget.publish(this.runAddress, this.runSize, this.fd);
    }
    return this.#kickTarget.buffer;
  }

  /** Closes the vCPU fd and unmaps its `kvm_run` page (a kick after this is a no-op). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#kickTarget?.retire();
    sys.detachBuffer(this.#runBuffer);
    sys.munmap(this.runAddress, this.runSize);
    sys.close(this.fd);
    this.#onClose?.();
    this.#onClose = undefined;
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
