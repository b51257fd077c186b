import type { GuestMemory } from '@rxvmm/guest-memory';

/** One guest buffer of a chain: guest-physical address and length (already bounds-checked). */
export interface Segment {
  addr: bigint;
  len: number;
}

/**
 * A popped descriptor chain. `head` is what goes back in the used entry: the
 * head descriptor index (split) or the buffer ID (packed). Readable segments
 * are device-readable (driver → device), writable ones device-writable.
 */
export interface DescriptorChain {
  head: number;
  readable: Segment[];
  writable: Segment[];
  readableLength: number;
  writableLength: number;
}

/**
 * Allocation-free chain for the hot path: `popInto(chain)` refills the same
 * object. Addresses are numbers (exact: guest memory ends below 2^53) in
 * preallocated typed arrays that grow only when a longer chain shows up.
 */
export class ChainBuffer {
  head = 0;
  /** Ring slots the chain occupied (1 for an indirect chain). */
  descriptorCount = 0;
  readableCount = 0;
  writableCount = 0;
  readableLength = 0;
  writableLength = 0;
  readableAddr: Float64Array;
  readableLen: Uint32Array;
  writableAddr: Float64Array;
  writableLen: Uint32Array;

  constructor(capacity = 16) {
    // At least one slot: setSingle() writes slot 0 unchecked, and growing doubles.
    const n = capacity >= 1 ? Math.floor(capacity) : 1;
    this.readableAddr = new Float64Array(n);
    this.readableLen = new Uint32Array(n);
    this.writableAddr = new Float64Array(n);
    this.writableLen = new Uint32Array(n);
  }

  /** @internal called by the queues before a walk. */
  reset(): void {
    this.readableCount = 0;
    this.writableCount = 0;
    this.readableLength = 0;
    this.writableLength = 0;
    this.descriptorCount = 0;
  }

  /**
   * @internal The whole chain is one descriptor (the common case): set in one go,
   * without reset() and a push (the capacity is at least 1).
   */
  setSingle(head: number, addr: number, len: number, writable: boolean): void {
    this.head = head;
    this.descriptorCount = 1;
    if (writable) {
      this.writableAddr[0] = addr;
      this.writableLen[0] = len;
      this.readableCount = 0;
      this.writableCount = 1;
      this.readableLength = 0;
      this.writableLength = len;
    } else {
      this.readableAddr[0] = addr;
      this.readableLen[0] = len;
      this.readableCount = 1;
      this.writableCount = 0;
      this.readableLength = len;
      this.writableLength = 0;
    }
  }

  /** Appends a device-readable segment (the queues fill chains with it). @internal */
  pushReadable(addr: number, len: number): void {
    const i = this.readableCount;
    if (i === this.readableAddr.length) this.growReadable();
    this.readableAddr[i] = addr;
    this.readableLen[i] = len;
    this.readableCount = i + 1;
    this.readableLength += len;
  }

  /** Appends a device-writable segment (the queues fill chains with it). @internal */
  pushWritable(addr: number, len: number): void {
    const i = this.writableCount;
    if (i === this.writableAddr.length) this.growWritable();
    this.writableAddr[i] = addr;
    this.writableLen[i] = len;
    this.writableCount = i + 1;
    this.writableLength += len;
  }

  /** Segments as plain objects (allocates; for code off the hot path). */
  readableSegments(): Segment[] {
    const out: Segment[] = [];
    for (let i = 0; i < this.readableCount; i++)
      out.push({ addr: BigInt(this.readableAddr[i]!), len: this.readableLen[i]! });
    return out;
  }
  /** Device-writable segments as plain objects (allocates; for code off the hot path). */
  writableSegments(): Segment[] {
    const out: Segment[] = [];
    for (let i = 0; i < this.writableCount; i++)
      out.push({ addr: BigInt(this.writableAddr[i]!), len: this.writableLen[i]! });
    return out;
  }

  /**
   * Fills this buffer from a {@link DescriptorChain} (the reverse of
   * {@link ChainBuffer.toDescriptorChain}): for chains that did not come off a
   * ring walk, such as ones recovered from an inflight record. Addresses become
   * numbers (exact: guest memory ends below 2^53); `descriptorCount` is 0, as
   * the ring slots are not known.
   */
  setFrom(chain: DescriptorChain): this {
    this.reset();
    this.head = chain.head;
    for (const s of chain.readable) this.pushReadable(Number(s.addr), s.len);
    for (const s of chain.writable) this.pushWritable(Number(s.addr), s.len);
    return this;
  }

  /** A detached {@link DescriptorChain} snapshot of this buffer. */
  toDescriptorChain(): DescriptorChain {
    return {
      head: this.head,
      readable: this.readableSegments(),
      writable: this.writableSegments(),
      readableLength: this.readableLength,
      writableLength: this.writableLength,
    };
  }

  /** Gathers the readable bytes, starting `skip` bytes in, into `dst`. Returns bytes copied. */
  read(mem: GuestMemory, dst: Uint8Array, skip = 0): number {
    return gather(mem, this.readableAddr, this.readableLen, this.readableCount, dst, skip);
  }

  /** Scatters `src` into the writable buffers, starting `skip` bytes in. Returns bytes written. */
  write(mem: GuestMemory, src: Uint8Array, skip = 0): number {
    return scatter(mem, this.writableAddr, this.writableLen, this.writableCount, src, skip);
  }

  private growReadable(): void {
    const n = this.readableAddr.length * 2;
    const a = new Float64Array(n);
    a.set(this.readableAddr);
    const l = new Uint32Array(n);
    l.set(this.readableLen);
    this.readableAddr = a;
    this.readableLen = l;
  }
  private growWritable(): void {
    const n = this.writableAddr.length * 2;
    const a = new Float64Array(n);
    a.set(this.writableAddr);
    const l = new Uint32Array(n);
    l.set(this.writableLen);
    this.writableAddr = a;
    this.writableLen = l;
  }
}

/** Gathers `segments` into `dst` (up to dst's length). Returns the number of bytes copied. */
export function readSegments(
  mem: GuestMemory,
  segments: readonly Segment[],
  dst: Uint8Array,
  skip = 0,
): number {
  let done = 0;
  let s = skip;
  for (const seg of segments) {
    if (done === dst.byteLength) break;
    if (s >= seg.len) {
      s -= seg.len;
      continue;
    }
    const n = Math.min(seg.len - s, dst.byteLength - done);
    mem.read(seg.addr + BigInt(s), dst.subarray(done, done + n));
    done += n;
    s = 0;
  }
  return done;
}

/** Scatters `src` over `segments` in order. Returns the number of bytes written. */
export function writeSegments(
  mem: GuestMemory,
  segments: readonly Segment[],
  src: Uint8Array,
  skip = 0,
): number {
  let done = 0;
  let s = skip;
  for (const seg of segments) {
    if (done === src.byteLength) break;
    if (s >= seg.len) {
      s -= seg.len;
      continue;
    }
    const n = Math.min(seg.len - s, src.byteLength - done);
    mem.write(seg.addr + BigInt(s), src.subarray(done, done + n));
    done += n;
    s = 0;
  }
  return done;
}

function gather(
  mem: GuestMemory,
  addrs: Float64Array,
  lens: Uint32Array,
  count: number,
  dst: Uint8Array,
  skip: number,
): number {
  let done = 0;
  let s = skip;
  for (let i = 0; i < count && done < dst.byteLength; i++) {
    const len = lens[i]!;
    if (s >= len) {
      s -= len;
      continue;
    }
    const n = Math.min(len - s, dst.byteLength - done);
    const a = addrs[i]! + s;
    const ri = mem.regionOf(a, n);
    if (ri >= 0) {
      const r = mem.regions[ri]!;
      copyBytes(r.bytes, a - r.start, dst, done, n);
    } else {
      mem.read(BigInt(a), dst.subarray(done, done + n));
    }
    done += n;
    s = 0;
  }
  return done;
}

function scatter(
  mem: GuestMemory,
  addrs: Float64Array,
  lens: Uint32Array,
  count: number,
  src: Uint8Array,
  skip: number,
): number {
  let done = 0;
  let s = skip;
  for (let i = 0; i < count && done < src.byteLength; i++) {
    const len = lens[i]!;
    if (s >= len) {
      s -= len;
      continue;
    }
    const n = Math.min(len - s, src.byteLength - done);
    const a = addrs[i]! + s;
    const ri = mem.regionOf(a, n);
    if (ri >= 0) {
      const r = mem.regions[ri]!;
      copyBytes(src, done, r.bytes, a - r.start, n);
    } else {
      mem.write(BigInt(a), src.subarray(done, done + n));
    }
    done += n;
    s = 0;
  }
  return done;
}

/**
 * Copies n bytes. Small copies use a plain loop: creating the subarray view
 * that `set` needs costs more than copying a request header byte by byte.
 */
function copyBytes(from: Uint8Array, fromOff: number, to: Uint8Array, toOff: number, n: number): void {
  if (n <= 64) {
    for (let i = 0; i < n; i++) to[toOff + i] = from[fromOff + i]!;
  } else {
    to.set(from.subarray(fromOff, fromOff + n), toOff);
  }
}
