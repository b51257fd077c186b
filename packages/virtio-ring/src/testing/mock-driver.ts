import { GuestMemory } from '@rxvmm/guest-memory';
import { queueAreaSizes } from '@rxvmm/virtio';
import { PackedDriver } from '../packed-driver.js';
import { PackedQueue } from '../packed-queue.js';
import type { QueueConfig } from '../queue-config.js';
import { SplitDriver, type UsedElement } from '../split-driver.js';
import { SplitQueue } from '../split-queue.js';
import { RangeAllocator } from './allocator.js';

/** Options of a mock driver: queue parameters and the fake guest RAM. */
export interface MockDriverOptions {
  /** Queue size (default 256). */
  size?: number;
  eventIdx?: boolean;
  indirect?: boolean;
  /** Bytes of guest RAM (default 1 MiB + rings). */
  memoryBytes?: number;
  /** Guest-physical address of the RAM (default 0x10000). */
  guestBase?: bigint;
  /** Back the RAM with a SharedArrayBuffer (to hand to a worker thread). */
  shared?: boolean;
}

/** One buffer to offer: bytes the device reads, sizes of buffers it writes. */
export interface MockBuffer {
  readable?: readonly Uint8Array[];
  writable?: readonly number[];
  /** Use an indirect descriptor table (needs `indirect: true`). */
  indirect?: boolean;
}

/** A used buffer as the mock driver sees it. */
export interface MockUsed extends UsedElement {
  /** The first `len` bytes of the writable buffers, concatenated (what the device wrote). */
  written: Uint8Array;
}

interface Inflight {
  allocations: number[];
  writable: { addr: number; len: number }[];
}

abstract class MockDriverBase {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  readonly memory: GuestMemory;
  readonly config: QueueConfig;
  readonly guestBase: bigint;
  protected readonly bytes: Uint8Array;
  protected readonly heap: RangeAllocator;
  protected readonly inflight = new Map<number, Inflight>();

  constructor(options: MockDriverOptions, packed: boolean) {
    const size = options.size ?? 256;
    const { desc: descBytes, driver: driverBytes, device: deviceBytes } = queueAreaSizes(size, packed);
    const desc = 0;
    const driver = align(desc + descBytes, 16);
    const device = align(driver + driverBytes, 16);
    const heapStart = align(device + deviceBytes, 4096);
    const total = heapStart + (options.memoryBytes ?? 1 << 20);
    this.buffer = options.shared ? new SharedArrayBuffer(total) : new ArrayBuffer(total);
    this.bytes = new Uint8Array(this.buffer);
    this.guestBase = options.guestBase ?? 0x10000n;
    this.memory = new GuestMemory([{ guestPhysAddr: this.guestBase, bytes: this.bytes }]);
    this.config = {
      size,
      packed,
      descTable: this.guestBase + BigInt(desc),
      driverArea: this.guestBase + BigInt(driver),
      deviceArea: this.guestBase + BigInt(device),
      eventIdx: options.eventIdx ?? false,
      indirect: options.indirect ?? false,
    };
    this.heap = new RangeAllocator(heapStart, total);
  }

  /** Allocates guest RAM (guest-physical address). */
  alloc(len: number): bigint {
    return this.guestBase + BigInt(this.heap.alloc(len));
  }
  /** Frees what {@link alloc} returned. */
  free(addr: bigint): void {
    this.heap.free(Number(addr - this.guestBase));
  }

  /** Buffers offered and not used yet. */
  get inflightCount(): number {
    return this.inflight.size;
  }

  /** Offers a buffer; returns its id (head index or buffer ID). */
  add(buffer: MockBuffer): number {
    const allocations: number[] = [];
    const take = (len: number) => {
      const off = this.heap.alloc(len);
      allocations.push(off);
      return off;
    };
    const readable = (buffer.readable ?? []).map((data) => {
      const off = take(data.byteLength);
      this.bytes.set(data, off);
      return { addr: this.guestBase + BigInt(off), len: data.byteLength };
    });
    const writableRaw = (buffer.writable ?? []).map((len) => {
      const off = take(len);
      this.bytes.fill(0, off, off + len);
      return { addr: off, len };
    });
    const writable = writableRaw.map((w) => ({ addr: this.guestBase + BigInt(w.addr), len: w.len }));
    let indirectTable: bigint | undefined;
    if (buffer.indirect)
      indirectTable = this.guestBase + BigInt(take(16 * (readable.length + writable.length)));
    try {
      const id = this.addRaw(readable, writable, indirectTable);
      this.inflight.set(id, { allocations, writable: writableRaw });
      return id;
    } catch (error) {
      for (const a of allocations) this.heap.free(a);
      throw error;
    }
  }

  /** Next used buffer with the bytes the device wrote, or null. */
  getUsed(): MockUsed | null {
    const used = this.usedRaw();
    if (!used) return null;
    const state = this.inflight.get(used.id);
    if (!state) throw new Error(`used id ${used.id} unknown to the mock`);
    this.inflight.delete(used.id);
    const written = new Uint8Array(
      Math.min(
        used.len,
        state.writable.reduce((n, w) => n + w.len, 0),
      ),
    );
    let done = 0;
    for (const w of state.writable) {
      const n = Math.min(w.len, written.byteLength - done);
      written.set(this.bytes.subarray(w.addr, w.addr + n), done);
      done += n;
    }
    for (const a of state.allocations) this.heap.free(a);
    return { ...used, written };
  }

  /** All used buffers available now. */
  drainUsed(): MockUsed[] {
    const out: MockUsed[] = [];
    for (let u = this.getUsed(); u; u = this.getUsed()) out.push(u);
    return out;
  }

  /** Raw little-endian access to the fake RAM by guest-physical address (for hostile-input tests). */
  poke16(addr: bigint, value: number): void {
    this.memory.writeU16(addr, value);
  }
  /** Writes a little-endian u32 of the fake RAM (for hostile-input tests). */
  poke32(addr: bigint, value: number): void {
    this.memory.writeU32(addr, value);
  }
  /** Writes a little-endian u64 of the fake RAM (for hostile-input tests). */
  poke64(addr: bigint, value: bigint): void {
    this.memory.writeU64(addr, value);
  }

  /** Offers the buffer to the ring (the subclass's driver); returns its id. */
  protected abstract addRaw(
    readable: { addr: bigint; len: number }[],
    writable: { addr: bigint; len: number }[],
    indirectTable: bigint | undefined,
  ): number;
  /** The next used element of the ring, or null. */
  protected abstract usedRaw(): UsedElement | null;
}

/**
 * A guest driver for one split virtqueue over a plain ArrayBuffer, so a device
 * built on rxvmm can be tested without a guest: offer buffers with `add`, run
 * the device on `device()`, read results with `getUsed`. The raw helpers write
 * arbitrary (hostile) ring contents.
 */
export class MockSplitDriver extends MockDriverBase {
  readonly driver: SplitDriver;

  constructor(options: MockDriverOptions = {}) {
    super(options, false);
    this.driver = new SplitDriver(this.memory, this.config);
  }

  /** A device-side queue over the same ring (config overrides for tests). */
  device(overrides: Partial<QueueConfig> = {}): SplitQueue {
    return new SplitQueue(this.memory, { ...this.config, ...overrides });
  }

  /** Whether the device asked to be kicked for what was added (event suppression). */
  needsKick(): boolean {
    return this.driver.needsKick();
  }

  /** Writes descriptor `index` of the table directly. */
  setDescriptor(index: number, desc: { addr: bigint; len: number; flags?: number; next?: number }): void {
    const at = this.config.descTable + BigInt(16 * index);
    this.memory.writeU64(at, desc.addr);
    this.memory.writeU32(at + 8n, desc.len);
    this.memory.writeU16(at + 12n, desc.flags ?? 0);
    this.memory.writeU16(at + 14n, desc.next ?? 0);
  }

  /** Puts `head` in the next avail ring slot and publishes it (bypassing the driver's bookkeeping). */
  publishHead(head: number): void {
    const idx = this.memory.readU16(this.config.driverArea + 2n);
    this.memory.writeU16(this.config.driverArea + 4n + BigInt(2 * (idx & (this.config.size - 1))), head);
    this.memory.storeReleaseU16(this.config.driverArea + 2n, (idx + 1) & 0xffff);
  }

  /** Sets the avail idx to any value. */
  setAvailIdx(idx: number): void {
    this.memory.storeReleaseU16(this.config.driverArea + 2n, idx & 0xffff);
  }

  /** Adds the buffer with the split driver; returns its head index. */
  protected addRaw(
    readable: { addr: bigint; len: number }[],
    writable: { addr: bigint; len: number }[],
    table: bigint | undefined,
  ): number {
    return this.driver.add(readable, writable, table === undefined ? {} : { indirectTable: table });
  }
  /** The split driver's next used element, or null. */
  protected usedRaw(): UsedElement | null {
    return this.driver.getUsed();
  }
}

/** The packed-ring counterpart of {@link MockSplitDriver}. */
export class MockPackedDriver extends MockDriverBase {
  readonly driver: PackedDriver;

  constructor(options: MockDriverOptions = {}) {
    super(options, true);
    this.driver = new PackedDriver(this.memory, this.config);
  }

  /** A device-side queue over the same ring (config overrides for tests). */
  device(overrides: Partial<QueueConfig> = {}): PackedQueue {
    return new PackedQueue(this.memory, { ...this.config, ...overrides });
  }

  /** Whether the device asked to be kicked for what was added (event suppression). */
  needsKick(): boolean {
    return this.driver.needsKick();
  }

  /** Writes the descriptor at ring position `pos` directly (flags last, with a release store). */
  setDescriptor(pos: number, desc: { addr: bigint; len: number; id?: number; flags: number }): void {
    const at = this.config.descTable + BigInt(16 * pos);
    this.memory.writeU64(at, desc.addr);
    this.memory.writeU32(at + 8n, desc.len);
    this.memory.writeU16(at + 12n, desc.id ?? 0);
    this.memory.storeReleaseU16(at + 14n, desc.flags);
  }

  /** Adds the buffer with the packed driver; returns its buffer ID. */
  protected addRaw(
    readable: { addr: bigint; len: number }[],
    writable: { addr: bigint; len: number }[],
    table: bigint | undefined,
  ): number {
    return this.driver.add(readable, writable, table === undefined ? {} : { indirectTable: table });
  }
  /** The packed driver's next used element, or null. */
  protected usedRaw(): UsedElement | null {
    return this.driver.getUsed();
  }
}

function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}
