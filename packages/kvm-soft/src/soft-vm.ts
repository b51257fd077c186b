import { errnoError } from '@rxvmm/errno';
import { IoBus } from '@rxvmm/io-bus';
import { IoEventFds } from '@rxvmm/ioeventfd';
import {
  defaultX86Routing,
  type InterruptSink,
  IrqFds,
  IrqRouter,
  USERSPACE_IRQ_SOURCE_ID,
} from '@rxvmm/irqfd';
import type {
  EventFdRef,
  IoEventFdArgs,
  IrqFdArgs,
  IrqRoutingEntry,
  MemoryRegion,
  MemoryRegionOptions,
  MsiMessage,
  Vcpu,
  Vm,
  VmWiring,
} from '@rxvmm/kvm';
import { fdOf } from './fd.js';
import { SoftIrqChip } from './irqchip/soft-irqchip.js';
import { SoftMemory } from './memory.js';
import { SoftVcpu } from './soft-vcpu.js';
import {
  bad,
  checkIoApicState,
  checkPicState,
  checkVersion,
  SOFT_STATE_VERSION,
  type SoftVmState,
} from './state.js';
import { applyWiring, planWiring, WiringRecord } from './wiring.js';

/** KVM_MAX_VCPU_IDS on x86. */
const MAX_VCPU_IDS = 4096;

/**
 * A SoftKvm VM: its "kernel side" is the io buses (@rxvmm/io-bus), the
 * ioeventfds (@rxvmm/ioeventfd), the irqfds and GSI routing (@rxvmm/irqfd)
 * and SoftIrqChip, wired exactly as KVM wires them.
 */
export class SoftVm implements Vm {
  readonly buses = { pio: new IoBus('pio'), mmio: new IoBus('mmio'), fastMmio: new IoBus('fast-mmio') };
  readonly memory = new SoftMemory();
  readonly ioeventfds = new IoEventFds(this.buses);
  readonly router: IrqRouter;
  readonly irqfds: IrqFds;
  #irqchip: SoftIrqChip | undefined;
  #vcpus = new Map<number, SoftVcpu>();
  #closed = false;
  readonly #wiring = new WiringRecord();

  constructor(private readonly onClose: (vm: SoftVm) => void = () => {}) {
    // Route ends go to the irqchip once it exists (KVM_CREATE_IRQCHIP).
    const sink: InterruptSink = {
      setPicIrq: (pin, src, level) => this.#irqchip?.setPicIrq(pin, src, level) ?? -1,
      setIoapicIrq: (pin, src, level) => this.#irqchip?.setIoapicIrq(pin, src, level) ?? -1,
      deliverMsi: (msi) => this.#irqchip?.deliverMsi(msi) ?? -1,
    };
    this.router = new IrqRouter(sink);
    this.irqfds = new IrqFds(this.router, { hasIrqchip: () => this.#irqchip !== undefined });
  }

  /** The in-kernel irqchip, once created. */
  get irqchip(): SoftIrqChip | undefined {
    return this.#irqchip;
  }

  setMemoryRegion(options: MemoryRegionOptions): MemoryRegion | undefined {
    this.#checkOpen();
    const region = this.memory.set(options);
    this.#wiring.memory(options);
    return region;
  }

  memoryRegions(): readonly MemoryRegion[] {
    return this.memory.regions();
  }

  createIrqChip(): void {
    this.#checkOpen();
    if (this.#irqchip) throw errnoError('EEXIST', 'the VM already has an irqchip');
    if (this.#vcpus.size > 0) throw errnoError('EINVAL', 'KVM_CREATE_IRQCHIP after KVM_CREATE_VCPU');
    this.#irqchip = new SoftIrqChip(this.buses, this.router, () => this.#wakeAll());
    this.router.setRouting(defaultX86Routing());
    this.#wiring.irqchip();
  }

  ioeventfd(args: IoEventFdArgs): void {
    this.#checkOpen();
    this.ioeventfds.ioeventfd({
      addr: args.addr,
      len: args.len,
      fd: fdOf(args.fd),
      datamatch: args.datamatch,
      flags: args.flags,
    });
    this.#wiring.ioeventfd(args, fdOf(args.fd));
  }

  irqfd(args: IrqFdArgs): void {
    this.#checkOpen();
    this.irqfds.irqfd({
      fd: fdOf(args.fd),
      gsi: args.gsi,
      flags: args.flags,
      resamplefd: fdOf(args.resamplefd),
    });
    this.#wiring.irqfd(args, fdOf(args.fd), fdOf(args.resamplefd));
  }

  setGsiRouting(entries: readonly IrqRoutingEntry[], flags = 0): void {
    this.#checkOpen();
    if (!this.#irqchip) throw errnoError('EINVAL', 'KVM_SET_GSI_ROUTING needs an in-kernel irqchip');
    this.router.setRouting(entries, flags);
    this.#wiring.routing(entries, flags);
  }

  /**
   * The in-kernel devices' state as plain data (PIC pair and IOAPIC; each vCPU's local APIC is
   * in its `SoftVcpu.state()`). The wiring is `wiring()`; memory and eventfds are their owners'.
   */
  state(): SoftVmState {
    this.#checkOpen();
    const chip = this.#irqchip;
    return {
      version: SOFT_STATE_VERSION,
      irqchip: chip ? { pic: chip.pic.state(), ioapic: chip.ioapic.state() } : null,
    };
  }

  /** Loads a `state()` into a VM wired the same way (`restoreWiring` first). Checked whole: `EINVAL`. */
  restoreState(state: SoftVmState): void {
    this.#checkOpen();
    const s = checkVersion(state, 'VM state');
    if ((s.irqchip === null) !== (this.#irqchip === undefined))
      throw bad(
        `irqchip state ${this.#irqchip ? 'missing for' : 'given to'} a VM ${this.#irqchip ? 'with' : 'without'} an irqchip`,
      );
    if (s.irqchip === null) return;
    const chip = s.irqchip as Record<string, unknown>;
    const pic = checkPicState(chip.pic);
    const ioapic = checkIoApicState(chip.ioapic);
    this.#irqchip!.pic.restore(pic);
    this.#irqchip!.ioapic.restore(ioapic);
    this.#wakeAll();
  }

  /** Memory slots, irqchip, GSI routes, ioeventfds and irqfds as set so far, as plain data. */
  wiring(): VmWiring {
    this.#checkOpen();
    return this.#wiring.wiring();
  }

  /**
   * Wires this fresh VM as `wiring` describes (memory slots, irqchip, GSI routes, irqfds,
   * ioeventfds, in that order), each saved eventfd replaced by `eventfds(savedFd)`. A malformed
   * wiring or an eventfd without replacement is `EINVAL` before anything is set up; a VM already
   * wired is `EBUSY`. Memory comes back zeroed: the caller loads the saved bytes.
   */
  restoreWiring(wiring: VmWiring, eventfds: (savedFd: number) => EventFdRef | undefined): void {
    this.#checkOpen();
    if (!this.#wiring.empty || this.#vcpus.size > 0)
      throw errnoError('EBUSY', 'restoreWiring needs a fresh VM (no memory, irqchip, vCPUs or eventfds yet)');
    applyWiring(planWiring(wiring, eventfds), this);
  }

  setIrqLine(gsi: number, level: boolean): void {
    this.#checkOpen();
    if (!this.#irqchip) throw errnoError('ENXIO', 'KVM_IRQ_LINE needs an in-kernel irqchip');
    this.router.setIrq(USERSPACE_IRQ_SOURCE_ID, gsi >>> 0, level);
  }

  /** KVM_SIGNAL_MSI: > 0 delivered, 0 blocked (e.g. APIC disabled), -1 no destination APIC. */
  signalMsi(msi: MsiMessage): number {
    this.#checkOpen();
    if (!this.#irqchip) throw errnoError('EINVAL', 'KVM_SIGNAL_MSI needs an in-kernel irqchip');
    return this.#irqchip.deliverMsi(msi);
  }

  createVcpu(id: number): Vcpu {
    return this.createSoftVcpu(id);
  }

  /** createVcpu with the SoftKvm type (to `load()` a guest program). */
  createSoftVcpu(id: number): SoftVcpu {
    this.#checkOpen();
    if (!Number.isInteger(id) || id < 0 || id >= MAX_VCPU_IDS) throw errnoError('EINVAL', `vCPU id ${id}`);
    if (this.#vcpus.has(id)) throw errnoError('EEXIST', `vCPU ${id} exists`);
    const vcpu = new SoftVcpu(id, {
      memory: this.memory,
      buses: this.buses,
      irqchip: () => this.#irqchip,
      onClose: (v) => this.#vcpus.delete(v.id),
    });
    this.#vcpus.set(id, vcpu);
    return vcpu;
  }

  #wakeAll(): void {
    for (const vcpu of this.#vcpus.values()) vcpu.wake();
  }

  /** Closes the VM: its ioeventfds and irqfds are released, its vCPUs closed. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const vcpu of [...this.#vcpus.values()]) vcpu.close();
    this.irqfds.close();
    this.ioeventfds.close();
    this.router.close();
    this.#irqchip?.close();
    for (const bus of Object.values(this.buses)) bus.close();
    this.memory.clear();
    this.onClose(this);
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw errnoError('EBADF', 'the VM is closed');
  }
}
