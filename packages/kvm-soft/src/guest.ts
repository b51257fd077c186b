/**
 * The guest side of SoftKvm: guest programs are TypeScript generator functions
 * that yield operations the "CPU" (SoftVcpu.run) performs. Anything that may
 * leave the guest (MMIO, PIO, hlt) is a generator to `yield*`, so the program
 * is suspended right there while the VMM handles an exit, and resumed by the
 * next run() with the VMM's answer:
 *
 *   const program: GuestProgram = function* (g) {
 *     yield* g.mmioWrite(0xd000_0050n, 4, 1);
 *     const status = yield* g.pioIn(0x3f8 + 5, 1);
 *   };
 *
 * Memory accessors are plain functions (guest RAM never exits).
 */
import type { Regs } from '@rxvmm/kvm';

/** An operation a guest program yields to the CPU: an access that may exit, a halt, a shutdown. */
export type GuestOp =
  | { op: 'mmio'; isWrite: boolean; addr: bigint; data: Uint8Array }
  | { op: 'pio'; isWrite: boolean; port: number; data: Uint8Array }
  | { op: 'hlt'; result: { vector: number } }
  | { op: 'shutdown' };

/** A suspended guest computation returning `T`. */
export type GuestStep<T> = Generator<GuestOp, T, unknown>;

/** A guest program (the vCPU's "code"). */
export type GuestProgram = (g: Guest) => GuestStep<void>;

/** An interrupt handler: runs with interrupts disabled, like an interrupt gate; returning is `iret`. */
export type InterruptHandler = (vector: number) => GuestStep<void> | void;

/** Little-endian bytes of `value` (`len` bytes). */
export function toLe(len: number, value: bigint | number): Uint8Array {
  const data = new Uint8Array(len);
  let v = BigInt.asUintN(64, BigInt(value));
  for (let i = 0; i < len; i++) {
    data[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return data;
}

/** The little-endian value of `data` (up to 8 bytes), the inverse of `toLe`. */
export function fromLe(data: Uint8Array): bigint {
  let v = 0n;
  for (let i = data.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[i] as number);
  return v;
}

/** What the CPU offers the guest program. */
export interface GuestCpu {
  readonly vcpuId: number;
  readonly regs: Regs;
  /** RFLAGS.IF. */
  interruptsEnabled: boolean;
  interruptHandler: InterruptHandler | undefined;
  memRead(addr: bigint, len: number): Uint8Array;
  memWrite(addr: bigint, bytes: Uint8Array): void;
}

const LAPIC = 0xfee0_0000n;
const IOAPIC = 0xfec0_0000n;

/** The guest API: guest-physical memory, MMIO/PIO, interrupts. */
export class Guest {
  constructor(readonly cpu: GuestCpu) {}

  get vcpuId(): number {
    return this.cpu.vcpuId;
  }

  /** The vCPU's registers (what KVM_GET/SET_REGS see). */
  get regs(): Regs {
    return this.cpu.regs;
  }

  // ---- guest-physical RAM (never exits; outside RAM it faults: internal error) ----
  /** Reads `len` bytes of guest RAM at `addr` (never exits; outside RAM is an internal error). */
  read(addr: bigint, len: number): Uint8Array {
    return this.cpu.memRead(addr, len);
  }
  /** Writes bytes into guest RAM at `addr`. */
  write(addr: bigint, bytes: Uint8Array): void {
    this.cpu.memWrite(addr, bytes);
  }
  /** Reads a byte of guest RAM. */
  readU8(addr: bigint): number {
    return Number(fromLe(this.read(addr, 1)));
  }
  /** Reads a little-endian u16 of guest RAM. */
  readU16(addr: bigint): number {
    return Number(fromLe(this.read(addr, 2)));
  }
  /** Reads a little-endian u32 of guest RAM. */
  readU32(addr: bigint): number {
    return Number(fromLe(this.read(addr, 4)));
  }
  /** Reads a little-endian u64 of guest RAM. */
  readU64(addr: bigint): bigint {
    return fromLe(this.read(addr, 8));
  }
  /** Writes a byte of guest RAM. */
  writeU8(addr: bigint, v: number): void {
    this.write(addr, toLe(1, v));
  }
  /** Writes a little-endian u16 of guest RAM. */
  writeU16(addr: bigint, v: number): void {
    this.write(addr, toLe(2, v));
  }
  /** Writes a little-endian u32 of guest RAM. */
  writeU32(addr: bigint, v: number): void {
    this.write(addr, toLe(4, v));
  }
  /** Writes a little-endian u64 of guest RAM. */
  writeU64(addr: bigint, v: bigint): void {
    this.write(addr, toLe(8, v));
  }

  // ---- I/O: may exit to the VMM ----
  /** A `len`-byte (1, 2, 4, 8) MMIO write; RAM addresses are plain memory writes. */
  *mmioWrite(addr: bigint, len: number, value: bigint | number): GuestStep<void> {
    yield { op: 'mmio', isWrite: true, addr, data: toLe(len, value) };
  }
  /** A `len`-byte MMIO read; the value comes from a device, RAM, or the VMM's answer to the exit. */
  *mmioRead(addr: bigint, len: number): GuestStep<bigint> {
    const data = new Uint8Array(len);
    yield { op: 'mmio', isWrite: false, addr, data };
    return fromLe(data);
  }
  /** `out` of `size` (1, 2, 4) bytes. */
  *pioOut(port: number, size: number, value: number | bigint): GuestStep<void> {
    yield { op: 'pio', isWrite: true, port, data: toLe(size, value) };
  }
  /** `in` of `size` bytes. */
  *pioIn(port: number, size: number): GuestStep<number> {
    const data = new Uint8Array(size);
    yield { op: 'pio', isWrite: false, port, data };
    return Number(fromLe(data));
  }

  // ---- interrupts ----
  /** `sti`. */
  sti(): void {
    this.cpu.interruptsEnabled = true;
  }
  /** `cli`. */
  cli(): void {
    this.cpu.interruptsEnabled = false;
  }
  /**
   * Installs the interrupt handler (the IDT). With one installed, interrupts are
   * taken between operations whenever IF is set.
   */
  setInterruptHandler(handler: InterruptHandler | undefined): void {
    this.cpu.interruptHandler = handler;
  }
  /**
   * `hlt`: sleeps until an interrupt can be taken (IF set), takes it (running the
   * handler, if any) and returns its vector. Without an in-kernel irqchip it is
   * KVM_EXIT_HLT and returns -1 on the next run().
   */
  *hlt(): GuestStep<number> {
    const result: { vector: number } = { vector: -1 };
    yield { op: 'hlt', result };
    return result.vector;
  }
  /** `sti; hlt`: waits for the next interrupt and returns its vector. */
  *waitForInterrupt(): GuestStep<number> {
    this.sti();
    return yield* this.hlt();
  }
  /** Triple fault: KVM_EXIT_SHUTDOWN. */
  *shutdown(): GuestStep<never> {
    yield { op: 'shutdown' };
    throw new Error('unreachable: a shut-down vCPU does not resume');
  }

  // ---- x86 interrupt controller programming (plain MMIO/PIO) ----
  /** Software-enables the local APIC (SVR = 0x1ff), TPR 0; `maskLint0` masks the PIC's ExtINT path. */
  *enableApic(options: { maskLint0?: boolean } = {}): GuestStep<void> {
    yield* this.mmioWrite(LAPIC + 0xf0n, 4, 0x1ff);
    yield* this.mmioWrite(LAPIC + 0x80n, 4, 0);
    if (options.maskLint0) yield* this.mmioWrite(LAPIC + 0x350n, 4, 0x1_0000);
  }
  /** Local APIC EOI. */
  *eoi(): GuestStep<void> {
    yield* this.mmioWrite(LAPIC + 0xb0n, 4, 0);
  }
  /** Programs IOAPIC redirection entry `pin`: fixed delivery of `vector` to APIC `dest`. */
  *ioapicRoute(
    pin: number,
    r: { vector: number; level?: boolean; masked?: boolean; dest?: number },
  ): GuestStep<void> {
    const low = (r.vector & 0xff) | (r.level ? 0x8000 : 0) | (r.masked ? 0x1_0000 : 0);
    yield* this.mmioWrite(IOAPIC, 4, 0x10 + 2 * pin + 1);
    yield* this.mmioWrite(IOAPIC + 0x10n, 4, ((r.dest ?? 0) & 0xff) << 24);
    yield* this.mmioWrite(IOAPIC, 4, 0x10 + 2 * pin);
    yield* this.mmioWrite(IOAPIC + 0x10n, 4, low);
  }
  /** Initialises both 8259s (vector bases, cascade on pin 2) and sets their masks. */
  *picInit(
    masterBase: number,
    slaveBase: number,
    masks: { master?: number; slave?: number } = {},
  ): GuestStep<void> {
    for (const [cmd, data, base, icw3] of [
      [0x20, 0x21, masterBase, 0x04],
      [0xa0, 0xa1, slaveBase, 0x02],
    ] as const) {
      yield* this.pioOut(cmd, 1, 0x11);
      yield* this.pioOut(data, 1, base);
      yield* this.pioOut(data, 1, icw3);
      yield* this.pioOut(data, 1, 0x01);
    }
    yield* this.pioOut(0x21, 1, masks.master ?? 0xfb);
    yield* this.pioOut(0xa1, 1, masks.slave ?? 0xff);
  }
  /** Masks every PIC pin (OCW1 0xff on both). */
  *maskPic(): GuestStep<void> {
    yield* this.pioOut(0x21, 1, 0xff);
    yield* this.pioOut(0xa1, 1, 0xff);
  }
  /** PIC EOI (non-specific) for a PIC vector; `slave` also EOIs the slave. */
  *picEoi(slave = false): GuestStep<void> {
    if (slave) yield* this.pioOut(0xa0, 1, 0x20);
    yield* this.pioOut(0x20, 1, 0x20);
  }
}
