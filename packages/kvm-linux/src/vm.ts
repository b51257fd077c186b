/**
 * A VM on /dev/kvm. Memory regions are memfd-backed (see memory.ts); the
 * irqchip, ioeventfd, irqfd, routing, IRQ line and MSI calls are the ioctls,
 * with their arguments encoded by structs.ts and the kernel's errors passed
 * through as `ErrnoError`s.
 */
import { errnoError } from '@rxvmm/errno';
import type {
  EventFdRef,
  IoEventFdArgs,
  IrqFdArgs,
  IrqRoutingEntry,
  MemoryRegionOptions,
  MsiMessage,
  Vm,
  VmWiring,
} from '@rxvmm/kvm';
import * as sys from '@rxvmm/sys';
import {
  KVM_CREATE_IRQCHIP,
  KVM_IOEVENTFD,
  KVM_IRQ_LINE,
  KVM_IRQFD,
  KVM_SET_GSI_ROUTING,
  KVM_SET_USER_MEMORY_REGION,
  KVM_SIGNAL_MSI,
} from './abi.js';
import { type MainThreadRun, mainThreadCheckWanted } from './main-thread-warning.js';
import {
  type GuestRamDescriptor,
  LinuxMemoryRegion,
  PrivateFileBacking,
  type PrivateMemorySource,
  RamBacking,
  type SlotBacking,
} from './memory.js';
import {
  encodeGsiRouting,
  encodeIoeventfd,
  encodeIrqfd,
  encodeIrqLevel,
  encodeMemoryRegion,
  encodeMsi,
} from './structs.js';
import { LinuxVcpu } from './vcpu.js';
import { type LinuxVmState, loadVmState, takeVmState } from './vm-state.js';
import { applyWiring, planWiring, WiringRecord } from './wiring.js';

/** The descriptor number an `EventFdRef` passes to the ioctl (-1 for none). */
const fdOf = (ref: EventFdRef | undefined): number =>
  ref === undefined ? -1 : typeof ref === 'number' ? ref : ref.fd;

/** Options of `vm.createVcpu(id, options)`. */
export interface VcpuOptions {
  /**
   * `'warn'` (default): the first `run()` on the main thread of a VM wired for events warns once
   * per process (`MAIN_THREAD_RUN_WARNING`); `'allow'`: no warning (the loop needs no event loop).
   */
  mainThreadRun?: MainThreadRun;
}

/** Something outside this thread that uses the VM (a vCPU runner): asked to stop on close. */
/** `setMemoryRegion`'s options on /dev/kvm: a slot may take its memory from a file (copy-on-write). */
export interface LinuxMemoryRegionOptions extends MemoryRegionOptions {
  /**
   * Map the slot's memory privately from this file instead of a fresh memfd (restoring a snapshot
   * lazily). Its region's `fd` is -1: not shareable with a vhost-user back-end. Only for a new
   * slot (`EBUSY` on a slot that is set).
   */
  source?: PrivateMemorySource;
}

/** Something outside this thread that uses the VM (a vCPU runner): asked to stop on close. */
export interface VmUser {
  /** Asked by `vm.close()`: end the use (the VM's RAM is unmapped once every user is gone). */
  stop(): unknown;
}

/** A VM on `/dev/kvm` (`kvm.createVm()`): memfd-backed RAM slots, the in-kernel irqchip, ioeventfds, irqfds, GSI routing, vCPUs. */
export class LinuxVm implements Vm {
  readonly fd: number;
  /** Size of a vCPU's kvm_run mapping (KVM_GET_VCPU_MMAP_SIZE). */
  readonly vcpuMmapSize: number;
  readonly #regions = new Map<number, LinuxMemoryRegion>();
  readonly #vcpus = new Set<LinuxVcpu>();
  readonly #users = new Set<VmUser>();
  #closed = false;
  #memoryReleased = false;
  #released: { promise: Promise<void>; resolve: () => void };
  #onClose: (() => void) | undefined;
  readonly #mainThreadRun: MainThreadRun | undefined;
  /** What this VM has that works through an event loop (for the main-thread warning). */
  readonly #eventWiring = new Set<string>();
  /** The wiring as the ioctls succeeded (`wiring()`, snapshots). */
  readonly #wiring = new WiringRecord();

  constructor(fd: number, vcpuMmapSize: number, onClose?: () => void, options: VcpuOptions = {}) {
    this.fd = fd;
    this.vcpuMmapSize = vcpuMmapSize;
    this.#onClose = onClose;
    this.#mainThreadRun = options.mainThreadRun;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    this.#released = { promise, resolve };
  }

  get closed(): boolean {
    return this.#closed;
  }

  #check(): void {
    if (this.#closed) throw errnoError('EBADF', 'VM is closed');
  }

  setMemoryRegion(options: LinuxMemoryRegionOptions): LinuxMemoryRegion | undefined {
    this.#check();
    const { slot, guestPhysAddr, size } = options;
    const flags = options.flags ?? 0;
    if (!Number.isSafeInteger(size) || size < 0) throw errnoError('EINVAL', `invalid region size ${size}`);
    const existing = this.#regions.get(slot);
    if (size === 0) {
      sys.ioctl(
        this.fd,
        KVM_SET_USER_MEMORY_REGION,
        encodeMemoryRegion({ slot, flags, guestPhysAddr, memorySize: 0, userspaceAddr: 0n }),
      );
      if (existing) {
        this.#regions.delete(slot);
        this.#releaseBacking(existing.backing);
      }
      this.#wiring.memory(options);
      return undefined;
    }
    // An existing slot keeps its memory: the kernel allows moving it or
    // changing its flags, and rejects (EINVAL) a new size for it.
    if (existing && options.source)
      throw errnoError('EBUSY', `slot ${slot} is set: remove it (size 0) before mapping a file into it`);
    const backing: SlotBacking =
      existing?.backing ??
      (options.source ? new PrivateFileBacking(size, options.source) : new RamBacking(slot, size));
    try {
      sys.ioctl(
        this.fd,
        KVM_SET_USER_MEMORY_REGION,
        encodeMemoryRegion({ slot, flags, guestPhysAddr, memorySize: size, userspaceAddr: backing.address }),
      );
    } catch (error) {
      if (!existing) backing.release();
      throw error;
    }
    const region = new LinuxMemoryRegion(slot, guestPhysAddr, flags, backing);
    this.#regions.set(slot, region);
    this.#wiring.memory(options);
    return region;
  }

  memoryRegions(): readonly LinuxMemoryRegion[] {
    return [...this.#regions.values()].sort((a, b) =>
      a.guestPhysAddr < b.guestPhysAddr ? -1 : a.guestPhysAddr > b.guestPhysAddr ? 1 : 0,
    );
  }

  /** The regions as plain data for another thread (`mapGuestRam`). */
  describeMemory(): GuestRamDescriptor[] {
    return this.memoryRegions().map((r) => r.describe());
  }

  /**
   * KVM_CREATE_IRQCHIP: the in-kernel PIC, IOAPIC and a local APIC per vCPU created after it. Set
   * the RAM slots up first where possible: with an irqchip, each slot change waits for the kernel's
   * SRCU readers (milliseconds on a nested host, against ~0.1 ms before).
   */
  createIrqChip(): void {
    this.#check();
    sys.ioctl(this.fd, KVM_CREATE_IRQCHIP);
    this.#eventWiring.add('an in-kernel irqchip');
    this.#wiring.irqchip();
  }

  ioeventfd(args: IoEventFdArgs): void {
    this.#check();
    sys.ioctl(this.fd, KVM_IOEVENTFD, encodeIoeventfd(args));
    this.#eventWiring.add('an ioeventfd');
    this.#wiring.ioeventfd(args, fdOf(args.fd));
  }

  irqfd(args: IrqFdArgs): void {
    this.#check();
    sys.ioctl(this.fd, KVM_IRQFD, encodeIrqfd(args));
    this.#eventWiring.add('an irqfd');
    this.#wiring.irqfd(args, fdOf(args.fd), fdOf(args.resamplefd));
  }

  setGsiRouting(entries: readonly IrqRoutingEntry[], flags = 0): void {
    this.#check();
    sys.ioctl(this.fd, KVM_SET_GSI_ROUTING, encodeGsiRouting(entries, flags));
    this.#wiring.routing(entries, flags);
  }

  /**
   * The in-kernel irqchip (PIC master, PIC slave, IOAPIC) and the KVM clock as plain data; with
   * `wiring()`, guest memory and each vCPU's `state()` it is the whole VM. Take it with the vCPUs
   * stopped (and devices paused), or it is a moment's value.
   */
  state(): LinuxVmState {
    this.#check();
    return takeVmState(this.fd, this.#wiring.wiring().irqchip);
  }

  /** Loads a `state()` into a VM wired the same way (`restoreWiring` first). Checked whole: `EINVAL`. */
  restoreState(state: LinuxVmState): void {
    this.#check();
    loadVmState(this.fd, this.#wiring.wiring().irqchip, state);
  }

  /** Memory slots, irqchip, GSI routes, ioeventfds and irqfds as set so far, as plain data. */
  wiring(): VmWiring {
    this.#check();
    return this.#wiring.wiring();
  }

  /**
   * Wires this fresh VM as `wiring` describes (memory slots, irqchip, GSI routes, irqfds,
   * ioeventfds, in that order), each saved eventfd replaced by `eventfds(savedFd)` (a kernel
   * eventfd of this process). A malformed wiring or an eventfd without replacement is `EINVAL`
   * before any ioctl; a VM already wired is `EBUSY`. Memory comes back zeroed (fresh memfds):
   * the caller loads the saved bytes; or, for the slots `memory(slot)` gives a source, mapped
   * privately from that file (copy-on-write, not shareable: see `LinuxMemoryRegionOptions.source`).
   */
  restoreWiring(
    wiring: VmWiring,
    eventfds: (savedFd: number) => EventFdRef | undefined,
    memory?: (slot: number) => PrivateMemorySource | undefined,
  ): void {
    this.#check();
    if (!this.#wiring.empty || this.#vcpus.size > 0)
      throw errnoError('EBUSY', 'restoreWiring needs a fresh VM (no memory, irqchip, vCPUs or eventfds yet)');
    const plan = planWiring(wiring, eventfds);
    if (memory)
      plan.memory = plan.memory.map((m) => {
        const source = memory(m.slot);
        return source ? { ...m, source } : m;
      });
    applyWiring(plan, this);
  }

  setIrqLine(gsi: number, level: boolean): void {
    this.#check();
    sys.ioctl(this.fd, KVM_IRQ_LINE, encodeIrqLevel(gsi, level));
  }

  /** > 0 delivered, 0 blocked (e.g. APIC software-disabled), -1 no destination APIC. */
  signalMsi(msi: MsiMessage): number {
    this.#check();
    try {
      return sys.ioctl(this.fd, KVM_SIGNAL_MSI, encodeMsi(msi));
    } catch (error) {
      // The kernel returns the delivery result -1 ("no destination") from the
      // ioctl itself, which userspace sees as -1 with errno 1 (EPERM).
      if ((error as { code?: string }).code === 'EPERM') return -1;
      throw error;
    }
  }

  /**
   * KVM_CREATE_VCPU on the calling thread, which is the only one that may run it. On the main thread
   * of a VM wired for events (irqchip, ioeventfd, irqfd) its first `run()` warns once, because
   * KVM_RUN blocks the event loop those need (`MAIN_THREAD_RUN_WARNING`); `mainThreadRun: 'allow'`
   * (or the same option of `openKvm`) says the program does this on purpose.
   */
  createVcpu(id: number, options: VcpuOptions = {}): LinuxVcpu {
    this.#check();
    const wiring = mainThreadCheckWanted(options.mainThreadRun ?? this.#mainThreadRun)
      ? () => (this.#eventWiring.size > 0 ? [...this.#eventWiring].join(', ') : undefined)
      : undefined;
    const vcpu = new LinuxVcpu(this.fd, id, this.vcpuMmapSize, () => this.#vcpus.delete(vcpu), wiring);
    this.#vcpus.add(vcpu);
    return vcpu;
  }

  /**
   * Registers a user on another thread (a vCPU runner). `close()` asks each to
   * stop and keeps guest RAM mapped until each calls the returned release.
   */
  attachUser(user: VmUser): () => void {
    this.#check();
    this.#users.add(user);
    return () => {
      if (this.#users.delete(user) && this.#closed && this.#users.size === 0) this.#releaseMemory();
    };
  }

  /** Resolves once everything (fd, memory) is released: after close, and after every attached user let go. */
  whenReleased(): Promise<void> {
    return this.#released.promise;
  }

  /** Closes the VM fd and stops its users; guest RAM is unmapped once every runner's worker is gone (`whenReleased()`). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const vcpu of [...this.#vcpus]) vcpu.close();
    // With users on other threads the fd stays open until they let go: a
    // runner still starting creates its vCPU on it (a closed number could be
    // reused by an unrelated file by then).
    if (this.#users.size === 0) this.#releaseMemory();
    else for (const user of this.#users) user.stop();
    this.#onClose?.();
    this.#onClose = undefined;
  }

  #releaseBacking(backing: SlotBacking): void {
    // A runner's worker may still have views of it: unmap once it let go.
    if (this.#users.size === 0) backing.release();
    else this.#deferred.push(backing);
  }

  readonly #deferred: SlotBacking[] = [];

  #releaseMemory(): void {
    if (this.#memoryReleased) return;
    this.#memoryReleased = true;
    for (const region of this.#regions.values()) region.backing.release();
    this.#regions.clear();
    for (const backing of this.#deferred.splice(0)) backing.release();
    sys.close(this.fd);
    this.#released.resolve();
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
