/**
 * The VM's wiring (`VmWiring` of `@rxvmm/kvm`): recorded as each ioctl
 * succeeds, and a saved one checked whole before a fresh VM is wired from it.
 * kvm-linux keeps the same logic for /dev/kvm (packages/kvm-linux/src/wiring.ts);
 * the kvm-contract suite holds both to the same round trip.
 */
import { errnoError } from '@rxvmm/errno';
import {
  type EventFdRef,
  IOEVENTFD_FLAG_DATAMATCH,
  IOEVENTFD_FLAG_DEASSIGN,
  IOEVENTFD_FLAG_PIO,
  type IoEventFdArgs,
  type IoEventFdWiring,
  IRQFD_FLAG_DEASSIGN,
  IRQFD_FLAG_RESAMPLE,
  type IrqFdArgs,
  type IrqFdWiring,
  type IrqRoutingEntry,
  type MemoryRegionOptions,
  type MemorySlotWiring,
  type VmWiring,
} from '@rxvmm/kvm';

const WIRING_VERSION = 1;

/** What a VM has been wired with so far, as its ioctls succeeded. */
export class WiringRecord {
  readonly #memory = new Map<number, MemorySlotWiring>();
  #irqchip = false;
  #routing: VmWiring['gsiRouting'] = null;
  #ioeventfds: IoEventFdWiring[] = [];
  #irqfds: IrqFdWiring[] = [];

  /** Nothing was wired yet: `restoreWiring` needs a fresh VM. */
  get empty(): boolean {
    return (
      this.#memory.size === 0 && !this.#irqchip && this.#ioeventfds.length === 0 && this.#irqfds.length === 0
    );
  }

  memory(options: MemoryRegionOptions): void {
    if (options.size === 0) {
      this.#memory.delete(options.slot);
      return;
    }
    this.#memory.set(options.slot, {
      slot: options.slot,
      guestPhysAddr: options.guestPhysAddr.toString(),
      size: options.size,
      flags: options.flags ?? 0,
    });
  }

  irqchip(): void {
    this.#irqchip = true;
  }

  routing(entries: readonly IrqRoutingEntry[], flags: number): void {
    this.#routing = { entries: structuredClone([...entries]), flags };
  }

  /** KVM_IOEVENTFD succeeded with `args` (fd = the descriptor number passed). */
  ioeventfd(args: IoEventFdArgs, fd: number): void {
    const flags = args.flags ?? 0;
    const datamatch = flags & IOEVENTFD_FLAG_DATAMATCH ? (args.datamatch ?? 0n).toString() : null;
    const entry: IoEventFdWiring = {
      addr: args.addr.toString(),
      len: args.len,
      datamatch,
      flags: flags & ~IOEVENTFD_FLAG_DEASSIGN,
      eventfd: fd,
    };
    if (!(flags & IOEVENTFD_FLAG_DEASSIGN)) {
      this.#ioeventfds.push(entry);
      return;
    }
    // kvm_deassign_ioeventfd_idx(): same bus, eventfd, address, length, wildcard, and datamatch.
    const pio = flags & IOEVENTFD_FLAG_PIO;
    const i = this.#ioeventfds.findIndex(
      (e) =>
        e.eventfd === fd &&
        e.addr === entry.addr &&
        e.len === entry.len &&
        (e.flags & IOEVENTFD_FLAG_PIO) === pio &&
        e.datamatch === datamatch,
    );
    if (i >= 0) this.#ioeventfds.splice(i, 1);
  }

  /** KVM_IRQFD succeeded with `args`. */
  irqfd(args: IrqFdArgs, fd: number, resamplefd: number): void {
    const flags = args.flags ?? 0;
    if (flags & IRQFD_FLAG_DEASSIGN) {
      // kvm_irqfd_deassign(): every irqfd of this eventfd on this GSI.
      this.#irqfds = this.#irqfds.filter((e) => !(e.eventfd === fd && e.gsi === args.gsi));
      return;
    }
    this.#irqfds.push({
      gsi: args.gsi,
      flags,
      eventfd: fd,
      resamplefd: flags & IRQFD_FLAG_RESAMPLE ? resamplefd : null,
    });
  }

  wiring(): VmWiring {
    return {
      version: WIRING_VERSION,
      memory: [...this.#memory.values()].sort((a, b) => a.slot - b.slot).map((m) => ({ ...m })),
      irqchip: this.#irqchip,
      gsiRouting: this.#routing === null ? null : structuredClone(this.#routing),
      ioeventfds: this.#ioeventfds.map((e) => ({ ...e })),
      irqfds: this.#irqfds.map((e) => ({ ...e })),
    };
  }
}

/** A saved wiring, checked and with its eventfds resolved: the arguments of the ioctls that re-create it. */
export interface WiringPlan {
  memory: MemoryRegionOptions[];
  irqchip: boolean;
  gsiRouting: { entries: IrqRoutingEntry[]; flags: number } | null;
  ioeventfds: IoEventFdArgs[];
  irqfds: IrqFdArgs[];
}

/**
 * Checks `wiring` field by field (it may come from a file) and maps its
 * eventfds with `eventfds`. Anything malformed, or an eventfd with no
 * replacement, is one `EINVAL` before any ioctl runs. Rules only the kernel
 * knows (overlaps, collisions) are left to the ioctls themselves.
 */
export function planWiring(
  wiring: unknown,
  eventfds: (savedFd: number) => EventFdRef | undefined,
): WiringPlan {
  const w = object(wiring, 'wiring');
  if (w.version !== WIRING_VERSION)
    throw bad(`version ${String(w.version)} (this code reads version ${WIRING_VERSION})`);
  const fd = (value: unknown, what: string): EventFdRef => {
    const saved = int(value, what, 0, 0x7fff_ffff);
    const ref = eventfds(saved);
    if (ref === undefined) throw bad(`${what}: no eventfd given for saved descriptor ${saved}`);
    return ref;
  };
  const memory = list(w.memory, 'memory').map((value, i): MemoryRegionOptions => {
    const m = object(value, `memory[${i}]`);
    return {
      slot: int(m.slot, `memory[${i}].slot`, 0, 0xffff_ffff),
      guestPhysAddr: u64(m.guestPhysAddr, `memory[${i}].guestPhysAddr`),
      size: int(m.size, `memory[${i}].size`, 1, Number.MAX_SAFE_INTEGER),
      flags: int(m.flags, `memory[${i}].flags`, 0, 0xffff_ffff),
    };
  });
  if (typeof w.irqchip !== 'boolean') throw bad('irqchip is not a boolean');
  let gsiRouting: WiringPlan['gsiRouting'] = null;
  if (w.gsiRouting !== null) {
    const r = object(w.gsiRouting, 'gsiRouting');
    const entries = list(r.entries, 'gsiRouting.entries').map((value, i) => {
      const e = object(value, `gsiRouting.entries[${i}]`);
      for (const [key, field] of Object.entries(e)) {
        if (key === 'type' && (field === 'irqchip' || field === 'msi')) continue;
        int(field, `gsiRouting.entries[${i}].${key}`, 0, 0xffff_ffff);
      }
      return { ...e } as IrqRoutingEntry;
    });
    gsiRouting = { entries, flags: int(r.flags, 'gsiRouting.flags', 0, 0xffff_ffff) };
    if (!w.irqchip) throw bad('a GSI routing table without an irqchip');
  }
  const ioeventfds = list(w.ioeventfds, 'ioeventfds').map((value, i): IoEventFdArgs => {
    const e = object(value, `ioeventfds[${i}]`);
    const flags = int(e.flags, `ioeventfds[${i}].flags`, 0, 0xffff_ffff);
    if (flags & IOEVENTFD_FLAG_DEASSIGN) throw bad(`ioeventfds[${i}] has the DEASSIGN flag`);
    const withData = (flags & IOEVENTFD_FLAG_DATAMATCH) !== 0;
    if (withData === (e.datamatch === null))
      throw bad(`ioeventfds[${i}].datamatch must be set exactly when DATAMATCH is`);
    const args: IoEventFdArgs = {
      addr: u64(e.addr, `ioeventfds[${i}].addr`),
      len: int(e.len, `ioeventfds[${i}].len`, 0, 8),
      fd: fd(e.eventfd, `ioeventfds[${i}].eventfd`),
      flags,
    };
    if (withData) args.datamatch = u64(e.datamatch, `ioeventfds[${i}].datamatch`);
    return args;
  });
  const irqfds = list(w.irqfds, 'irqfds').map((value, i): IrqFdArgs => {
    const e = object(value, `irqfds[${i}]`);
    const flags = int(e.flags, `irqfds[${i}].flags`, 0, 0xffff_ffff);
    if (flags & IRQFD_FLAG_DEASSIGN) throw bad(`irqfds[${i}] has the DEASSIGN flag`);
    const resample = (flags & IRQFD_FLAG_RESAMPLE) !== 0;
    if (resample === (e.resamplefd === null))
      throw bad(`irqfds[${i}].resamplefd must be set exactly when RESAMPLE is`);
    const args: IrqFdArgs = {
      gsi: int(e.gsi, `irqfds[${i}].gsi`, 0, 0xffff_ffff),
      flags,
      fd: fd(e.eventfd, `irqfds[${i}].eventfd`),
    };
    if (resample) args.resamplefd = fd(e.resamplefd, `irqfds[${i}].resamplefd`);
    return args;
  });
  if (!w.irqchip && irqfds.length > 0) throw bad('irqfds without an irqchip');
  return { memory, irqchip: w.irqchip, gsiRouting, ioeventfds, irqfds };
}

/** The ioctls of a plan, in the order the kernel needs them (memory, irqchip, routes, irqfds, ioeventfds). */
export function applyWiring(
  plan: WiringPlan,
  vm: {
    setMemoryRegion(options: MemoryRegionOptions): unknown;
    createIrqChip(): void;
    setGsiRouting(entries: readonly IrqRoutingEntry[], flags?: number): void;
    irqfd(args: IrqFdArgs): void;
    ioeventfd(args: IoEventFdArgs): void;
  },
): void {
  for (const m of plan.memory) vm.setMemoryRegion(m);
  if (plan.irqchip) vm.createIrqChip();
  if (plan.gsiRouting) vm.setGsiRouting(plan.gsiRouting.entries, plan.gsiRouting.flags);
  for (const args of plan.irqfds) vm.irqfd(args);
  for (const args of plan.ioeventfds) vm.ioeventfd(args);
}

function object(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw bad(`${what} is not an object`);
  return value as Record<string, unknown>;
}

function list(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw bad(`${what} is not a list`);
  return value;
}

function int(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw bad(`${what} = ${JSON.stringify(value)} is not an integer in [${min}, ${max}]`);
  return value;
}

function u64(value: unknown, what: string): bigint {
  if (typeof value !== 'string' || !/^(0|[1-9][0-9]{0,19})$/.test(value) || BigInt(value) >= 1n << 64n)
    throw bad(`${what} = ${JSON.stringify(value)} is not a u64 decimal string`);
  return BigInt(value);
}

function bad(why: string): Error {
  return errnoError('EINVAL', `bad VM wiring: ${why}`);
}
