/**
 * The rxvmm KVM backend interface. It mirrors the KVM ioctl API (the shape of
 * rust-vmm's kvm-ioctls): `Kvm` → `Vm` → `Vcpu`. Every backend (SoftKvm in
 * `@rxvmm/kvm-soft`, `@rxvmm/kvm-linux` on /dev/kvm) implements it with the
 * kernel's rules and errno codes; one contract suite (`@rxvmm/kvm-contract`)
 * runs against all of them.
 *
 * Conventions:
 * - Guest-physical addresses and 64-bit values are `bigint`; sizes and small
 *   fields are `number`.
 * - Methods that mirror an ioctl throw an `ErrnoError` (`.code` = errno name)
 *   exactly where the ioctl fails.
 * - Every resource is disposable (`using vm = kvm.createVm()`); disposal
 *   releases everything the resource owns (vCPUs, ioeventfds, irqfds, memory).
 */
import type { ErrnoCode } from '@rxvmm/errno';
import type { IrqRoutingEntry, MsiMessage } from './irq-routing.js';
import type { VmWiring } from './wiring.js';

/**
 * What the VM ioctls need of an eventfd: its descriptor number. `EventFd` and
 * `SoftEventFd` from `@rxvmm/eventfd` both fit. A raw number is accepted
 * too, as the ioctl would (a closed or unknown fd gives `EBADF`, an open fd
 * that is not an eventfd gives `EINVAL`).
 */
export type EventFdRef = { readonly fd: number } | number;

/** Capabilities `checkExtension` answers, by name (KVM_CAP_*). */
export type Capability =
  | 'irqchip'
  | 'irqfd'
  | 'irqfd-resample'
  | 'ioeventfd'
  | 'ioeventfd-any-length'
  | 'irq-routing'
  | 'signal-msi'
  | 'user-memory'
  | 'immediate-exit';

/** The system handle (`/dev/kvm`, or SoftKvm). */
export interface Kvm extends Disposable {
  /** Which backend this is, e.g. `'soft'` or `'linux'`. */
  readonly backend: string;
  /** KVM_GET_API_VERSION (12 on every kernel since 2.6.22). */
  apiVersion(): number;
  /** KVM_CHECK_EXTENSION, by name. */
  checkExtension(capability: Capability): boolean;
  /** KVM_CREATE_VM. */
  createVm(): Vm;
  /** Closes /dev/kvm (or the SoftKvm); VMs created from it stay usable until they are closed. */
  close(): void;
}

/** A guest RAM slot to create or replace (KVM_SET_USER_MEMORY_REGION); `size` 0 deletes the slot. */
export interface MemoryRegionOptions {
  /** Slot number; a slot is replaced or removed by reusing it (size 0 removes). */
  slot: number;
  /** Guest-physical base address (page aligned). */
  guestPhysAddr: bigint;
  /** Size in bytes (page multiple). */
  size: number;
  /** KVM_MEM_* flags. */
  flags?: number;
}

/** A region of guest RAM that the backend allocated and mapped. */
export interface MemoryRegion {
  readonly slot: number;
  readonly guestPhysAddr: bigint;
  readonly size: number;
  readonly flags: number;
  /** Zero-copy view of the region's bytes, as the guest sees them. */
  readonly bytes: Uint8Array;
  /** A file descriptor backing the region (memfd) that another process may map, or -1. */
  readonly fd: number;
  /** Offset of the region in `fd`. */
  readonly fdOffset: number;
}

/** KVM_IOEVENTFD arguments: the fields of `struct kvm_ioeventfd`. */
export interface IoEventFdArgs {
  /** Guest-physical (MMIO) or port (PIO) address. */
  addr: bigint;
  /** Access length: 0 (any length; MMIO fast path), 1, 2, 4 or 8. */
  len: number;
  fd: EventFdRef;
  /**
   * The value to match when `IOEVENTFD_FLAG_DATAMATCH` is set. A u64 (the struct field): outside
   * 0..2^64-1 it is `EINVAL` on every backend, never wrapped.
   */
  datamatch?: bigint;
  /** IOEVENTFD_FLAG_* bits (DATAMATCH, PIO, DEASSIGN). */
  flags?: number;
}

/** KVM_IRQFD arguments: the fields of `struct kvm_irqfd`. */
export interface IrqFdArgs {
  fd: EventFdRef;
  gsi: number;
  /** IRQFD_FLAG_* bits (DEASSIGN, RESAMPLE). */
  flags?: number;
  /**
   * With IRQFD_FLAG_RESAMPLE: signalled when the guest acknowledges the level interrupt. Missing, it
   * is passed as -1, so RESAMPLE without one is `EBADF` on every backend.
   */
  resamplefd?: EventFdRef;
}

/** The general-purpose registers (struct kvm_regs), as bigints. */
export interface Regs {
  rax: bigint;
  rbx: bigint;
  rcx: bigint;
  rdx: bigint;
  rsi: bigint;
  rdi: bigint;
  rsp: bigint;
  rbp: bigint;
  r8: bigint;
  r9: bigint;
  r10: bigint;
  r11: bigint;
  r12: bigint;
  r13: bigint;
  r14: bigint;
  r15: bigint;
  rip: bigint;
  rflags: bigint;
}

/** struct kvm_segment. */
export interface Segment {
  base: bigint;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

/** struct kvm_dtable. */
export interface DescriptorTable {
  base: bigint;
  limit: number;
}

/** The special registers (struct kvm_sregs) that set-up code touches. */
export interface Sregs {
  cs: Segment;
  ds: Segment;
  es: Segment;
  fs: Segment;
  gs: Segment;
  ss: Segment;
  tr: Segment;
  ldt: Segment;
  gdt: DescriptorTable;
  idt: DescriptorTable;
  cr0: bigint;
  cr2: bigint;
  cr3: bigint;
  cr4: bigint;
  cr8: bigint;
  efer: bigint;
  apicBase: bigint;
}

/**
 * Why `Vcpu.run()` returned. Data of an I/O or MMIO exit is a live view: for a
 * read (`in`, MMIO read) the VMM writes its answer into `data` before the next
 * `run()`, which hands it to the guest, as with `kvm_run`.
 */
export type VcpuExit =
  | {
      kind: 'io';
      direction: 'in' | 'out';
      port: number;
      /** Access size in bytes: 1, 2 or 4. */
      size: number;
      /** Repetitions (string I/O); `data` holds `size * count` bytes. */
      count: number;
      data: Uint8Array;
    }
  | { kind: 'mmio'; isWrite: boolean; addr: bigint; len: number; data: Uint8Array }
  /** KVM_EXIT_HLT: only without an in-kernel irqchip. */
  | { kind: 'hlt' }
  | { kind: 'shutdown' }
  /**
   * KVM_RUN returned EINTR: `Vcpu.kick()` (or a signal) interrupted it, or
   * `immediateExit` was set. SoftKvm also returns this when the guest waits
   * for an interrupt and none is pending (it cannot sleep the thread):
   * await `Vcpu.whenRunnable()` and run again.
   */
  | { kind: 'intr' }
  | { kind: 'internal-error'; suberror: number }
  | { kind: 'fail-entry'; reason: bigint }
  | { kind: 'system-event'; type: number }
  | { kind: 'unknown'; reason: number };

/** A virtual CPU (KVM_CREATE_VCPU): registers, the synchronous `run()` loop, kicks. */
export interface Vcpu extends Disposable {
  readonly id: number;
  /** KVM_GET_REGS: the general-purpose registers, RIP and RFLAGS. */
  getRegs(): Regs;
  /** KVM_SET_REGS. */
  setRegs(regs: Regs): void;
  /** KVM_GET_SREGS: segment, descriptor-table and control registers, EFER, APIC base. */
  getSregs(): Sregs;
  /** KVM_SET_SREGS. */
  setSregs(sregs: Sregs): void;
  /**
   * KVM_RUN: enters the guest until the next exit. Synchronous, like the ioctl:
   * on kvm-linux call it on the thread that created the vCPU (a worker).
   */
  run(): VcpuExit;
  /**
   * Makes the current or next `run()` return `{ kind: 'intr' }` soon; safe to
   * call from any thread that holds this object (or its kick handle).
   */
  kick(): void;
  /**
   * Resolves when `run()` has something to do again after it returned
   * `{ kind: 'intr' }` (SoftKvm: an interrupt is pending; kvm-linux: at once).
   */
  whenRunnable(): Promise<void>;
  /** Closes the vCPU. A run in progress on another thread ends first. */
  close(): void;
}

/** A virtual machine (KVM_CREATE_VM): memory slots, the irqchip, ioeventfds, irqfds, GSI routing, vCPUs. */
export interface Vm extends Disposable {
  /** KVM_SET_USER_MEMORY_REGION with memory the backend allocates; size 0 deletes the slot. */
  setMemoryRegion(options: MemoryRegionOptions): MemoryRegion | undefined;
  /** The memory regions currently set, sorted by guest-physical address. */
  memoryRegions(): readonly MemoryRegion[];
  /** KVM_CREATE_IRQCHIP (PIC, IOAPIC, LAPIC on x86) and the default GSI routes. */
  createIrqChip(): void;
  /** KVM_IOEVENTFD (assign, or deassign with IOEVENTFD_FLAG_DEASSIGN). */
  ioeventfd(args: IoEventFdArgs): void;
  /** KVM_IRQFD (assign, or deassign with IRQFD_FLAG_DEASSIGN). */
  irqfd(args: IrqFdArgs): void;
  /**
   * KVM_SET_GSI_ROUTING: replaces the whole table atomically. `flags` is
   * `struct kvm_irq_routing.flags` (must be 0; default 0).
   */
  setGsiRouting(entries: readonly IrqRoutingEntry[], flags?: number): void;
  /** KVM_IRQ_LINE: the level of one GSI as driven by userspace. */
  setIrqLine(gsi: number, level: boolean): void;
  /** KVM_SIGNAL_MSI: > 0 delivered, 0 blocked or coalesced (< 0: no destination, where the backend reports it as a value). */
  signalMsi(msi: MsiMessage): number;
  /** KVM_CREATE_VCPU. On kvm-linux, call it on the thread that will run the vCPU. */
  createVcpu(id: number): Vcpu;
  /**
   * The wiring set up so far (memory slots, irqchip, GSI routes, ioeventfds, irqfds) as plain
   * data, recorded as each ioctl succeeded: what a snapshot re-creates in a fresh VM.
   */
  wiring(): VmWiring;
  /**
   * Wires this fresh VM as `wiring` describes, each saved eventfd replaced by
   * `eventfds(savedFd)`. Malformed wiring or an eventfd without replacement is `EINVAL` before
   * any ioctl; a VM already wired is `EBUSY`; an ioctl that fails (a hostile wiring the kernel
   * refuses) throws its errno, and the VM should then be closed. Memory comes back zeroed.
   */
  restoreWiring(wiring: VmWiring, eventfds: (savedFd: number) => EventFdRef | undefined): void;
  /** Closes the VM: ioeventfds and irqfds are released; guest RAM is unmapped once no vCPU uses it. */
  close(): void;
}

/** Type guard shared by backends for errno-coded failures. */
export type { ErrnoCode };
