/**
 * What a backend provides to run the shared contract suite: a way to open it,
 * and the guests the suite's scenarios need. A guest is loaded into a fresh
 * vCPU (memory, registers, program); each backend writes its guests in its own
 * way (TypeScript programs on SoftKvm, tiny x86 programs on /dev/kvm), but all
 * behave exactly as documented here, so the suite's assertions are the same.
 *
 * Every guest ends by writing one byte (0) to `DONE_PORT`; values it reports
 * go to `REPORT_PORT` as 4-byte `out`s (the low 32 bits).
 */
import type { Kvm, Vcpu, Vm } from '@rxvmm/kvm';

/** 4-byte PIO writes of values a guest reports. */
export const REPORT_PORT = 0x3f0;
/** 1-byte PIO write that ends a guest's scenario. */
export const DONE_PORT = 0x3f4;

/**
 * Reported by `interruptWaiter` with `ready: true` once its interrupt
 * controller is set up, just before it first sleeps: the suite signals
 * interrupts at that exit, so it never blocks in a sleeping KVM_RUN.
 */
export const READY_REPORT = 0x5245_4459; // "REDY"

/** Guest-physical RAM every contract VM gets: slot 0 at GPA 0. */
export const CONTRACT_RAM_SIZE = 2 * 1024 * 1024;

/** A GPA range (inside neither RAM nor the irqchip's MMIO) for MMIO scenarios. */
export const CONTRACT_MMIO_BASE = 0xd000_0000n;

/** What `mmioWriter` and `pioWriter` write. */
export interface WriterParams {
  /** MMIO guest-physical address or PIO port. */
  addr: bigint;
  /** Bytes per access: 1, 2, 4 or 8 (PIO: 1, 2 or 4). */
  len: number;
  /** Value written, little-endian, truncated to `len` bytes. */
  value: bigint;
  /** How many times the same write is made. */
  count: number;
}

/** What `mmioReader` and `pioReader` read. */
export interface ReaderParams {
  /** MMIO guest-physical address or PIO port. */
  addr: bigint;
  /** Bytes per access: 1, 2, 4 or 8 (PIO: 1, 2 or 4). */
  len: number;
}

/** What `interruptWaiter` waits for. */
export interface InterruptWaiterParams {
  /** Interrupts to take before DONE. */
  count: number;
  /**
   * When set, the guest programs this IOAPIC pin to deliver `vector` to its
   * APIC (edge, or level when `level` is true), unmasked, before waiting. MSI
   * routes need no guest set-up.
   */
  ioapicPin?: number;
  vector: number;
  level?: boolean;
  /**
   * (Added; optional.) When true, after its set-up (APIC enabled, LINT0 masked,
   * IOAPIC pin programmed) and before its first sleep, the guest reports
   * `READY_REPORT` on REPORT_PORT.
   */
  ready?: boolean;
}

/** The scenario guests a backend provides, each loaded into a fresh vCPU by the suite. */
export interface ContractGuests {
  /** `count` MMIO writes of `value` (`len` bytes) to `addr`, then DONE. */
  mmioWriter(vm: Vm, vcpu: Vcpu, params: WriterParams): void;
  /** `count` PIO `out`s of `value` (`len` bytes) to port `addr`, then DONE. */
  pioWriter(vm: Vm, vcpu: Vcpu, params: WriterParams): void;
  /** One MMIO read of `len` bytes at `addr`; reports the value read (low 32 bits), then DONE. */
  mmioReader(vm: Vm, vcpu: Vcpu, params: ReaderParams): void;
  /** One PIO `in` of `len` bytes from port `addr`; reports the value read, then DONE. */
  pioReader(vm: Vm, vcpu: Vcpu, params: ReaderParams): void;
  /**
   * Enables its interrupt controller (local APIC software-enabled, LINT0
   * masked so the 8259 PIC cannot inject) and interrupts, then sleeps (hlt) until
   * interrupted; for each interrupt it takes it reports the vector, sends EOI,
   * and sleeps again; after `count` interrupts, DONE.
   */
  interruptWaiter(vm: Vm, vcpu: Vcpu, params: InterruptWaiterParams): void;
}

/** What a backend gives the contract suite: how to open it, its eventfds, an fd that is not an eventfd, and its guests. */
export interface BackendFixture {
  /** Shown in test names, e.g. 'SoftKvm' or '/dev/kvm'. */
  name: string;
  /** Opens the backend; the suite disposes what it opens. */
  open(): Kvm;
  /**
   * Creates an eventfd of the kind this backend's ioctls accept (the
   * in-memory one for SoftKvm, a kernel eventfd for /dev/kvm).
   */
  createEventFd(options?: {
    initval?: number;
    semaphore?: boolean;
    nonblock?: boolean;
  }): import('./eventfd-ref.js').ContractEventFd;
  /** An fd that is open but is not an eventfd (for EINVAL), and its release. */
  openNonEventFd(): {
    fd: number;
    /** Closes that fd. */
    close(): void;
  };
  guests: ContractGuests;
}
