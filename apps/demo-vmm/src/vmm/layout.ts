/**
 * Where things are in the demo machine: guest RAM, the virtio-mmio window,
 * the interrupt route, and the shared state between the vCPU thread (which
 * owns the register file) and the device back-end (which owns the queues).
 */

/** Guest RAM from GPA 0 (one memfd-backed slot on KVM). */
export const RAM_SIZE = 16 << 20;
/** The virtio-mmio register window (below 4 GiB, inside the guest's identity map). */
export const MMIO_BASE = 0xd000_0000n;
export const MMIO_SIZE = 0x1000;
/** QueueNotify: where the ioeventfd sits (4 bytes, datamatch = queue index, as Firecracker does). */
export const QUEUE_NOTIFY_ADDR = MMIO_BASE + 0x50n;
/**
 * GSI of the device interrupt, routed as an MSI to APIC 0 (fixed, edge,
 * DEVICE_VECTOR). MSI rather than an IOAPIC pin because the kernel injects an
 * irqfd's MSI synchronously in the writer's context, whereas an IOAPIC route
 * goes through a work queue where two completions may merge into one interrupt.
 */
export const DEVICE_GSI = 24;
export const DEVICE_VECTOR = 0x40;
export const DEVICE_MSI = { addressLo: 0xfee0_0000, addressHi: 0, data: DEVICE_VECTOR } as const;
/** boot_info.ioapic_pin when the route is MSI (the guest leaves the IOAPIC alone). */
export const NO_IOAPIC_PIN = 0xffff_ffff_ffff_ffffn;
/** Initial stack for the entry (the guest sets its own at once). */
export const BOOT_STACK = 0x7_f000n;
/** Descriptors in queue 0 as the guest sets it up (the device offers 256). */
export const GUEST_QUEUE_SIZE = 16;
export const DEVICE_QUEUE_MAX = 256;

/**
 * Shared state (a SharedArrayBuffer both threads see): Int32 words, then a
 * Float64 area for timestamps (`nowMs()`: the monotonic clock, the same in every thread).
 */
export const SharedWord = {
  /** Set by the back-end when it met a ring error: the register file applies DEVICE_NEEDS_RESET. */
  needsReset: 0,
  /** The Status register as the register file last left it (for the final report). */
  status: 1,
  /** 1 once the register file applied needsReset. */
  needsResetApplied: 2,
  /**
   * The kick eventfd (a process-wide fd number), set before the device description is published:
   * the vCPU worker starts before this thread has made it.
   */
  kickFd: 3,
} as const;
/** hello, done: the guest's first and last instruction; device: its first access to the device (MMIO window). */
export const SharedTime = { hello: 0, done: 1, device: 2 } as const;
const WORDS = 8;
const TIMES = 4;

export class SharedState {
  readonly words: Int32Array;
  readonly times: Float64Array;
  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(WORDS * 4 + TIMES * 8)) {
    this.words = new Int32Array(buffer, 0, WORDS);
    this.times = new Float64Array(buffer, WORDS * 4, TIMES);
  }
  get(word: number): number {
    return Atomics.load(this.words, word);
  }
  set(word: number, value: number): void {
    Atomics.store(this.words, word, value);
  }
}

/**
 * The monotonic clock in milliseconds (CLOCK_MONOTONIC through `process.hrtime`: one clock for every
 * thread of the process). Stamps use it rather than `performance`, whose first use in a thread
 * loads perf_hooks (~0.7 ms in the vCPU worker: it would land inside the HELLO stamp).
 */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Process start on the `nowMs()` clock, read once (so every conversion agrees). */
let processStart: number | undefined;

/** A `nowMs()` stamp as milliseconds since this process started (`performance.timeOrigin`). */
export function sinceProcessStart(stamp: number): number {
  processStart ??= nowMs() - performance.now();
  return stamp - processStart;
}
