/**
 * Typed encoders and decoders for the KVM ioctl argument structs. Each
 * function fills a fresh (zeroed) buffer laid out per abi.ts, whose values are
 * checked against <linux/kvm.h>; the ioctl wrappers only ever pass these.
 */
import { errnoError } from '@rxvmm/errno';
import {
  type DescriptorTable,
  type EventFdRef,
  type IoEventFdArgs,
  IRQ_ROUTING_IRQCHIP,
  IRQ_ROUTING_MSI,
  type IrqFdArgs,
  type IrqRoutingEntry,
  MSI_VALID_DEVID,
  type MsiMessage,
  type Regs,
  SEGMENT_NAMES,
  type Segment,
  type Sregs,
} from '@rxvmm/kvm';
import {
  DtableLayout,
  IoeventfdLayout,
  IrqfdLayout,
  IrqLevelLayout,
  IrqRoutingEntryLayout,
  IrqRoutingLayout,
  MemoryRegionLayout,
  MsiLayout,
  REGS_ORDER,
  RegsLayout,
  SegmentLayout,
  SregsLayout,
} from './abi.js';

/** A zeroed struct buffer and a little-endian DataView over it. */
function struct(size: number): { bytes: Uint8Array; view: DataView } {
  const bytes = new Uint8Array(size);
  return { bytes, view: new DataView(bytes.buffer) };
}

/** Checks an unsigned field before DataView silently wraps it. */
function u32(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw errnoError('EINVAL', `${what} must be an unsigned 32-bit integer, got ${value}`);
  }
  return value;
}

function u64(value: bigint, what: string): bigint {
  if (typeof value !== 'bigint' || value < 0n || value > 0xffff_ffff_ffff_ffffn) {
    throw errnoError('EINVAL', `${what} must be an unsigned 64-bit bigint, got ${String(value)}`);
  }
  return value;
}

/** The descriptor number an EventFdRef names (the kernel validates it: EBADF/EINVAL). */
export function eventFdNumber(ref: EventFdRef): number {
  const fd = typeof ref === 'number' ? ref : ref.fd;
  if (!Number.isInteger(fd)) throw errnoError('EBADF', `not a file descriptor: ${String(fd)}`);
  // An fd outside the int range cannot be open: the kernel would say EBADF.
  return fd < 0 || fd > 0x7fff_ffff ? -1 : fd;
}

export function encodeMemoryRegion(region: {
  slot: number;
  flags: number;
  guestPhysAddr: bigint;
  memorySize: number;
  userspaceAddr: bigint;
}): Uint8Array {
  const { bytes, view } = struct(MemoryRegionLayout.size);
  const L = MemoryRegionLayout;
  view.setUint32(L.slot, u32(region.slot, 'slot'), true);
  view.setUint32(L.flags, u32(region.flags, 'flags'), true);
  view.setBigUint64(L.guest_phys_addr, u64(region.guestPhysAddr, 'guestPhysAddr'), true);
  view.setBigUint64(L.memory_size, u64(BigInt(region.memorySize), 'size'), true);
  view.setBigUint64(L.userspace_addr, region.userspaceAddr, true);
  return bytes;
}

export function encodeIrqLevel(gsi: number, level: boolean): Uint8Array {
  const { bytes, view } = struct(IrqLevelLayout.size);
  view.setUint32(IrqLevelLayout.irq, u32(gsi, 'gsi'), true);
  view.setUint32(IrqLevelLayout.level, level ? 1 : 0, true);
  return bytes;
}

export function encodeIrqfd(args: IrqFdArgs): Uint8Array {
  const { bytes, view } = struct(IrqfdLayout.size);
  view.setInt32(IrqfdLayout.fd, eventFdNumber(args.fd), true);
  view.setUint32(IrqfdLayout.gsi, u32(args.gsi, 'gsi'), true);
  view.setUint32(IrqfdLayout.flags, u32(args.flags ?? 0, 'flags'), true);
  // No resamplefd is -1, never 0 (stdin): with RESAMPLE the kernel answers EBADF, as every backend does.
  view.setInt32(
    IrqfdLayout.resamplefd,
    args.resamplefd === undefined ? -1 : eventFdNumber(args.resamplefd),
    true,
  );
  return bytes;
}

export function encodeIoeventfd(args: IoEventFdArgs): Uint8Array {
  const { bytes, view } = struct(IoeventfdLayout.size);
  view.setBigUint64(IoeventfdLayout.datamatch, u64(args.datamatch ?? 0n, 'datamatch'), true);
  view.setBigUint64(IoeventfdLayout.addr, u64(args.addr, 'addr'), true);
  view.setUint32(IoeventfdLayout.len, u32(args.len, 'len'), true);
  view.setInt32(IoeventfdLayout.fd, eventFdNumber(args.fd), true);
  view.setUint32(IoeventfdLayout.flags, u32(args.flags ?? 0, 'flags'), true);
  return bytes;
}

export function encodeMsi(msi: MsiMessage): Uint8Array {
  const { bytes, view } = struct(MsiLayout.size);
  view.setUint32(MsiLayout.address_lo, u32(msi.addressLo, 'addressLo'), true);
  view.setUint32(MsiLayout.address_hi, u32(msi.addressHi, 'addressHi'), true);
  view.setUint32(MsiLayout.data, u32(msi.data, 'data'), true);
  if (msi.devid !== undefined) {
    view.setUint32(MsiLayout.flags, MSI_VALID_DEVID, true);
    view.setUint32(MsiLayout.devid, u32(msi.devid, 'devid'), true);
  }
  return bytes;
}

export function encodeGsiRouting(entries: readonly IrqRoutingEntry[], flags = 0): Uint8Array {
  const E = IrqRoutingEntryLayout;
  const { bytes, view } = struct(IrqRoutingLayout.size + entries.length * E.size);
  view.setUint32(IrqRoutingLayout.nr, entries.length, true);
  view.setUint32(IrqRoutingLayout.flags, u32(flags, 'routing flags'), true);
  entries.forEach((entry, i) => {
    const at = IrqRoutingLayout.entries + i * E.size;
    view.setUint32(at + E.gsi, u32(entry.gsi, 'gsi'), true);
    // A raw numeric type code is passed as is (the kernel rejects unknown ones).
    const type =
      entry.type === 'irqchip'
        ? IRQ_ROUTING_IRQCHIP
        : entry.type === 'msi'
          ? IRQ_ROUTING_MSI
          : u32(entry.type as number, 'routing entry type');
    view.setUint32(at + E.type, type, true);
    const e = entry as {
      flags?: number;
      irqchip?: number;
      pin?: number;
      addressLo?: number;
      addressHi?: number;
      data?: number;
      devid?: number;
    };
    let entryFlags = e.flags ?? 0;
    if (type === IRQ_ROUTING_MSI) {
      view.setUint32(at + E.msi_address_lo, u32(e.addressLo ?? 0, 'addressLo'), true);
      view.setUint32(at + E.msi_address_hi, u32(e.addressHi ?? 0, 'addressHi'), true);
      view.setUint32(at + E.msi_data, u32(e.data ?? 0, 'data'), true);
      if (e.devid !== undefined) {
        view.setUint32(at + E.msi_devid, u32(e.devid, 'devid'), true);
        if (e.flags === undefined) entryFlags = MSI_VALID_DEVID;
      }
    } else {
      view.setUint32(at + E.irqchip, u32(e.irqchip ?? 0, 'irqchip'), true);
      view.setUint32(at + E.pin, u32(e.pin ?? 0, 'pin'), true);
    }
    view.setUint32(at + E.flags, u32(entryFlags, 'entry flags'), true);
  });
  return bytes;
}

export function newRegsBuffer(): Uint8Array {
  return new Uint8Array(RegsLayout.size);
}

export function decodeRegs(bytes: Uint8Array): Regs {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const regs = {} as Regs;
  REGS_ORDER.forEach((name, i) => {
    regs[name] = view.getBigUint64(i * 8, true);
  });
  return regs;
}

export function encodeRegs(regs: Regs): Uint8Array {
  const { bytes, view } = struct(RegsLayout.size);
  REGS_ORDER.forEach((name, i) => {
    view.setBigUint64(i * 8, u64(regs[name], name), true);
  });
  return bytes;
}

function decodeSegment(view: DataView, at: number): Segment {
  const L = SegmentLayout;
  return {
    base: view.getBigUint64(at + L.base, true),
    limit: view.getUint32(at + L.limit, true),
    selector: view.getUint16(at + L.selector, true),
    type: view.getUint8(at + L.type),
    present: view.getUint8(at + L.present),
    dpl: view.getUint8(at + L.dpl),
    db: view.getUint8(at + L.db),
    s: view.getUint8(at + L.s),
    l: view.getUint8(at + L.l),
    g: view.getUint8(at + L.g),
    avl: view.getUint8(at + L.avl),
    unusable: view.getUint8(at + L.unusable),
  };
}

function encodeSegment(view: DataView, at: number, seg: Segment): void {
  const L = SegmentLayout;
  view.setBigUint64(at + L.base, u64(seg.base, 'segment base'), true);
  view.setUint32(at + L.limit, u32(seg.limit, 'segment limit'), true);
  view.setUint16(at + L.selector, seg.selector, true);
  view.setUint8(at + L.type, seg.type);
  view.setUint8(at + L.present, seg.present);
  view.setUint8(at + L.dpl, seg.dpl);
  view.setUint8(at + L.db, seg.db);
  view.setUint8(at + L.s, seg.s);
  view.setUint8(at + L.l, seg.l);
  view.setUint8(at + L.g, seg.g);
  view.setUint8(at + L.avl, seg.avl);
  view.setUint8(at + L.unusable, seg.unusable);
}

function decodeDtable(view: DataView, at: number): DescriptorTable {
  return {
    base: view.getBigUint64(at + DtableLayout.base, true),
    limit: view.getUint16(at + DtableLayout.limit, true),
  };
}

function encodeDtable(view: DataView, at: number, table: DescriptorTable): void {
  view.setBigUint64(at + DtableLayout.base, u64(table.base, 'table base'), true);
  view.setUint16(at + DtableLayout.limit, table.limit, true);
}

const CONTROL = [
  ['cr0', 'cr0'],
  ['cr2', 'cr2'],
  ['cr3', 'cr3'],
  ['cr4', 'cr4'],
  ['cr8', 'cr8'],
  ['efer', 'efer'],
  ['apicBase', 'apic_base'],
] as const;

export function newSregsBuffer(): Uint8Array {
  return new Uint8Array(SregsLayout.size);
}

export function decodeSregs(bytes: Uint8Array): Sregs {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const sregs = {} as Sregs;
  for (const name of SEGMENT_NAMES) sregs[name] = decodeSegment(view, SregsLayout[name]);
  sregs.gdt = decodeDtable(view, SregsLayout.gdt);
  sregs.idt = decodeDtable(view, SregsLayout.idt);
  for (const [name, field] of CONTROL) sregs[name] = view.getBigUint64(SregsLayout[field], true);
  return sregs;
}

/**
 * Writes `sregs` over `bytes` (a KVM_GET_SREGS result), keeping the fields the
 * interface does not carry (the pending-interrupt bitmap) as the kernel had them.
 */
export function encodeSregsInto(bytes: Uint8Array, sregs: Sregs): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const name of SEGMENT_NAMES) encodeSegment(view, SregsLayout[name], sregs[name]);
  encodeDtable(view, SregsLayout.gdt, sregs.gdt);
  encodeDtable(view, SregsLayout.idt, sregs.idt);
  for (const [name, field] of CONTROL) view.setBigUint64(SregsLayout[field], u64(sregs[name], name), true);
  return bytes;
}
