import { GuestMemoryError } from './errors.js';

/** One region of guest RAM as handed to {@link GuestMemory}. */
export interface GuestMemoryRegionInit {
  guestPhysAddr: bigint;
  /** Backing bytes (a view over an ArrayBuffer, SharedArrayBuffer or a mapped memfd). */
  bytes: Uint8Array;
}

/**
 * A resolved region. Guest-physical bounds are plain numbers: both x86-64 and
 * arm64 cap physical addresses at 52 bits, so every real guest address is an
 * exact double and the hot path never touches bigint. `u16`/`u32`/`view` are
 * views starting at an 8-byte-aligned buffer offset at or below the region
 * (index = `hostOffset` + offset-in-region, divided by the width), so an access
 * is aligned exactly when the host address is, which Atomics require.
 */
export interface HostRegion {
  readonly index: number;
  readonly start: number;
  readonly end: number;
  readonly bytes: Uint8Array;
  /** Byte offset of `start` inside the views below (0..7: the views begin 8-aligned). */
  readonly hostOffset: number;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly view: DataView;
}

const TWO_64 = 1n << 64n;
/** Regions must end at or below 2^53 (52-bit physical address spaces fit with room). */
export const MAX_GUEST_PHYS = 2 ** 53;

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  // Rings are little-endian and read through native-endian typed arrays.
  throw new Error('@rxvmm/guest-memory needs a little-endian host');
}

/**
 * Guest RAM as a set of non-overlapping regions. Every access is bounds-checked
 * against the regions; an address plus a length past 2^64 is an error, never a wrap.
 * Numbers are little-endian as virtio 1.x requires.
 */
export class GuestMemory {
  readonly regions: readonly HostRegion[];
  private readonly starts: Float64Array;
  private readonly ends: Float64Array;
  private last = 0;

  constructor(regions: readonly GuestMemoryRegionInit[]) {
    const sorted = [...regions].sort((a, b) => (a.guestPhysAddr < b.guestPhysAddr ? -1 : 1));
    const out: HostRegion[] = [];
    let prevEnd = -1;
    for (const r of sorted) {
      if (r.guestPhysAddr < 0n) throw new GuestMemoryError('region address is negative');
      const end = r.guestPhysAddr + BigInt(r.bytes.byteLength);
      if (end > BigInt(MAX_GUEST_PHYS)) {
        throw new GuestMemoryError('region ends above 2^53 (beyond any 52-bit physical address space)');
      }
      const start = Number(r.guestPhysAddr);
      if (start < prevEnd) throw new GuestMemoryError(`regions overlap at 0x${start.toString(16)}`);
      if (r.bytes.byteLength === 0) continue;
      // Views begin at the 8-aligned buffer offset below the region, so their
      // element alignment is the host alignment, even in buffers beyond 4 GiB.
      const buffer = r.bytes.buffer;
      const viewBase = r.bytes.byteOffset - (r.bytes.byteOffset % 8);
      const hostOffset = r.bytes.byteOffset - viewBase;
      const span = hostOffset + r.bytes.byteLength;
      out.push({
        index: out.length,
        start,
        end: Number(end),
        bytes: r.bytes,
        hostOffset,
        u16: new Uint16Array(buffer, viewBase, Math.floor(span / 2)),
        u32: new Uint32Array(buffer, viewBase, Math.floor(span / 4)),
        view: new DataView(buffer, viewBase, span),
      });
      prevEnd = Number(end);
    }
    this.regions = out;
    this.starts = Float64Array.from(out, (r) => r.start);
    this.ends = Float64Array.from(out, (r) => r.end);
  }

  /**
   * Index of the region holding all of [addr, addr+len), or -1. `addr` and
   * `len` are numbers (hot path); a range spanning two regions gives -1.
   */
  regionOf(addr: number, len: number): number {
    // `len <= end - addr` rather than `addr + len <= end`: the difference of two
    // integers below 2^53 is exact, a sum near 2^53 may round.
    const i = this.last;
    if (i < this.starts.length && addr >= this.starts[i]! && len <= this.ends[i]! - addr) return i;
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.starts[mid]! <= addr) lo = mid + 1;
      else hi = mid - 1;
    }
    if (hi < 0 || !(len <= this.ends[hi]! - addr)) return -1;
    this.last = hi;
    return hi;
  }

  /**
   * True when [addr, addr+len) is backed by memory, possibly across adjacent
   * regions. An empty range must start inside a region (or at its end).
   */
  covers(addr: number, len: number): boolean {
    if (!(addr >= 0) || !(len >= 0) || len > MAX_GUEST_PHYS - addr) return false;
    if (this.regionOf(addr, len) >= 0) return true;
    if (len === 0) return false; // an empty buffer still needs an address inside memory
    let a = addr;
    let left = len;
    while (left > 0) {
      const r = this.regionOf(a, 1);
      if (r < 0) return false;
      const step = this.ends[r]! - a;
      if (step >= left) return true;
      left -= step;
      a = this.ends[r]!;
    }
    return true;
  }

  /** bigint form of {@link covers}; false for negative addresses and ranges wrapping 2^64. */
  isValidRange(addr: bigint, len: number | bigint): boolean {
    const l = BigInt(len);
    if (addr < 0n || l < 0n || addr + l > TWO_64) return false;
    if (addr + l > BigInt(MAX_GUEST_PHYS)) return false;
    return this.covers(Number(addr), Number(l));
  }

  /** Resolves a range inside one region: [region, offset-in-region]. Throws GuestMemoryError. */
  resolve(addr: bigint, len: number): [HostRegion, number] {
    const r = this.at(addr, len);
    return [r, this.atOffset];
  }

  /** Offset in the region found by the last {@link at} call (saves a tuple per access). */
  private atOffset = 0;

  private at(addr: bigint, len: number): HostRegion {
    const a = checkedNumber(addr, len);
    const ri = this.regionOf(a, len);
    if (ri < 0)
      throw new GuestMemoryError(`[0x${addr.toString(16)}, +${len}) is not inside one memory region`);
    const region = this.regions[ri]!;
    this.atOffset = a - region.start;
    return region;
  }

  /** Reads a byte at `addr` (EFAULT outside RAM). */
  readU8(addr: bigint): number {
    const r = this.at(addr, 1);
    const off = this.atOffset;
    return r.bytes[off]!;
  }
  /** Reads a little-endian u16 at `addr` (EFAULT outside RAM or across two regions). */
  readU16(addr: bigint): number {
    const r = this.at(addr, 2);
    const off = this.atOffset;
    return r.view.getUint16(r.hostOffset + off, true);
  }
  /** Reads a little-endian u32 at `addr` (EFAULT outside RAM or across two regions). */
  readU32(addr: bigint): number {
    const r = this.at(addr, 4);
    const off = this.atOffset;
    return r.view.getUint32(r.hostOffset + off, true);
  }
  /** Reads a little-endian u64 at `addr` (EFAULT outside RAM or across two regions). */
  readU64(addr: bigint): bigint {
    const r = this.at(addr, 8);
    const off = this.atOffset;
    return r.view.getBigUint64(r.hostOffset + off, true);
  }
  /** Writes a byte at `addr` (EFAULT outside RAM). */
  writeU8(addr: bigint, value: number): void {
    const r = this.at(addr, 1);
    const off = this.atOffset;
    r.bytes[off] = value;
  }
  /** Writes a little-endian u16 at `addr` (EFAULT outside RAM or across two regions). */
  writeU16(addr: bigint, value: number): void {
    const r = this.at(addr, 2);
    const off = this.atOffset;
    r.view.setUint16(r.hostOffset + off, value, true);
  }
  /** Writes a little-endian u32 at `addr` (EFAULT outside RAM or across two regions). */
  writeU32(addr: bigint, value: number): void {
    const r = this.at(addr, 4);
    const off = this.atOffset;
    r.view.setUint32(r.hostOffset + off, value >>> 0, true);
  }
  /** Writes a little-endian u64 at `addr` (EFAULT outside RAM or across two regions). */
  writeU64(addr: bigint, value: bigint): void {
    const r = this.at(addr, 8);
    const off = this.atOffset;
    r.view.setBigUint64(r.hostOffset + off, BigInt.asUintN(64, value), true);
  }

  /** Copies guest memory into `dst` (the range may span adjacent regions). */
  read(addr: bigint, dst: Uint8Array): void {
    this.copy(addr, dst, false);
  }
  /** Copies `src` into guest memory (the range may span adjacent regions). */
  write(addr: bigint, src: Uint8Array): void {
    this.copy(addr, src, true);
  }

  /** Zero-copy view of [addr, addr+len); throws unless it lies in one region. */
  slice(addr: bigint, len: number): Uint8Array {
    const r = this.at(addr, len);
    const off = this.atOffset;
    return r.bytes.subarray(off, off + len);
  }

  /** Acquire load of a 16-bit ring index (Atomics; the other side is another thread or process). */
  loadAcquireU16(addr: bigint): number {
    const r = this.at(addr, 2);
    const off = this.atOffset;
    return Atomics.load(r.u16, alignedIndex(r, off, 2));
  }
  /** Release store of a 16-bit ring index. */
  storeReleaseU16(addr: bigint, value: number): void {
    const r = this.at(addr, 2);
    const off = this.atOffset;
    Atomics.store(r.u16, alignedIndex(r, off, 2), value);
  }
  /** Acquire load of an aligned 32-bit word (Atomics; the other side is another thread or process). */
  loadAcquireU32(addr: bigint): number {
    const r = this.at(addr, 4);
    const off = this.atOffset;
    return Atomics.load(r.u32, alignedIndex(r, off, 4));
  }
  /** Release store of an aligned 32-bit word. */
  storeReleaseU32(addr: bigint, value: number): void {
    const r = this.at(addr, 4);
    const off = this.atOffset;
    Atomics.store(r.u32, alignedIndex(r, off, 4), value >>> 0);
  }

  private copy(addr: bigint, buf: Uint8Array, toGuest: boolean): void {
    const len = buf.byteLength;
    let a = checkedNumber(addr, len);
    if (!this.covers(a, len)) {
      throw new GuestMemoryError(`[0x${addr.toString(16)}, +${len}) is outside guest memory`);
    }
    let done = 0;
    while (done < len) {
      const ri = this.regionOf(a, 1);
      const r = this.regions[ri]!;
      const off = a - r.start;
      const n = Math.min(len - done, r.end - a);
      if (toGuest) r.bytes.set(buf.subarray(done, done + n), off);
      else buf.set(r.bytes.subarray(off, off + n), done);
      done += n;
      a += n;
    }
  }
}

const MAX_GUEST_PHYS_BIG = BigInt(MAX_GUEST_PHYS);

/** Validates a bigint address + length (no negative, no wrap of 2^64) and converts it. */
function checkedNumber(addr: bigint, len: number): number {
  if (!(len >= 0) || !Number.isSafeInteger(len)) throw new GuestMemoryError(`bad length ${len}`);
  // Fast path: below 2^53 the number is exact and the sum cannot wrap 2^64.
  if (typeof addr === 'bigint' && addr >= 0n && addr <= MAX_GUEST_PHYS_BIG) {
    const a = Number(addr);
    if (len <= MAX_GUEST_PHYS - a) return a;
  }
  if (typeof addr !== 'bigint' || addr < 0n || addr >= TWO_64) {
    throw new GuestMemoryError(`address ${String(addr)} is not a 64-bit guest-physical address`);
  }
  if (addr + BigInt(len) > TWO_64) {
    throw new GuestMemoryError(`[0x${addr.toString(16)}, +${len}) wraps past 2^64`);
  }
  throw new GuestMemoryError(`[0x${addr.toString(16)}, +${len}) is outside guest memory`);
}

function alignedIndex(r: HostRegion, off: number, width: number): number {
  const host = r.hostOffset + off;
  if (host % width !== 0)
    throw new GuestMemoryError(`atomic ${width * 8}-bit access at a misaligned address`);
  return host / width;
}
