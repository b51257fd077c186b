import type { GuestMemory } from '@rxvmm/guest-memory';
import { queueAreaAlignments, queueAreaSizes } from '@rxvmm/virtio';
import { ChainBuffer, type DescriptorChain } from './chain.js';
import {
  MAX_INDIRECT_ENTRIES,
  RING_EVENT_FLAGS_DESC,
  RING_EVENT_FLAGS_DISABLE,
  RING_EVENT_FLAGS_ENABLE,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_USED,
  VIRTQ_DESC_F_WRITE,
} from './constants.js';
import { VirtqueueError, type VirtqueueErrorReason } from './errors.js';
import { packedNeedEvent } from './need-event.js';
import { checkQueueSize, describeBadBuffer, type QueueConfig, ringArea } from './queue-config.js';
import {
  bad,
  bool,
  brokenQueueState,
  checkedBroken,
  checkedQueueState,
  int,
  type PackedQueueState,
  QUEUE_STATE_VERSION,
  queueConfigState,
} from './queue-state.js';
import { STORES_VISIBLE_IN_ORDER } from './store-order.js';
import type { Virtqueue } from './virtqueue.js';

const TWO_32 = 4294967296;

/**
 * Device side of a packed virtqueue (virtio 1.1 §2.8). Availability is read
 * from each head's flags (acquire) against the device's wrap counter; used
 * descriptors are written in completion order with a release store of their
 * flags. The ring position of the next used descriptor advances by the number
 * of ring slots the completed buffer occupied, which the queue remembers per
 * buffer ID (an ID reused while still in flight is hostile input).
 */
export class PackedQueue implements Virtqueue {
  readonly size: number;
  readonly eventIdx: boolean;
  readonly indirect: boolean;
  readonly strictOrder: boolean;
  readonly config: Readonly<QueueConfig>;
  private readonly mem: GuestMemory;
  private readonly descU32: Uint32Array;
  private readonly descU16: Uint16Array;
  private readonly desc32: number;
  private readonly desc16: number;
  /** Driver Event Suppression (read by the device): u16 index of off_wrap; flags follow. */
  private readonly drvU16: Uint16Array;
  private readonly drvI: number;
  /** Device Event Suppression (written by the device). */
  private readonly devU16: Uint16Array;
  private readonly devI: number;

  private availPos = 0;
  private availWrap = 1;
  private usedPos = 0;
  private usedWrap = 1;
  /** Ring slots used since the last needsNotification() decision. */
  private sinceSignal = 0;
  private signalledValid = false;
  /** Used entries were added since the last needsNotification(). */
  private dirty = false;
  /** Ring slots taken by each in-flight buffer ID (0 = not in flight). */
  private readonly inflight = new Uint16Array(65536);
  private inflightCount = 0;
  private brokenBy: VirtqueueError | null = null;
  /** Bounds of the region the last buffer was in: most buffers hit it without a lookup. */
  private fastLo = 0;
  private fastHi = -1;
  private readonly scratch = new ChainBuffer();

  constructor(mem: GuestMemory, config: QueueConfig) {
    const size = config.size;
    checkQueueSize(size, config.maxSize, true);
    const bytes = queueAreaSizes(size, true);
    const align = queueAreaAlignments(true);
    const desc = ringArea(mem, config.descTable, bytes.desc, align.desc, 'descriptor ring');
    const drv = ringArea(mem, config.driverArea, bytes.driver, align.driver, 'driver event suppression');
    const dev = ringArea(mem, config.deviceArea, bytes.device, align.device, 'device event suppression');
    this.mem = mem;
    this.config = { ...config };
    this.size = size;
    this.eventIdx = config.eventIdx ?? false;
    this.indirect = config.indirect ?? false;
    this.strictOrder = config.strictOrder ?? true;
    this.descU32 = desc.region.u32;
    this.descU16 = desc.region.u16;
    this.desc32 = desc.host / 4;
    this.desc16 = desc.host / 2;
    this.drvU16 = drv.region.u16;
    this.drvI = drv.host / 2;
    this.devU16 = dev.region.u16;
    this.devI = dev.host / 2;
  }

  get broken(): VirtqueueError | null {
    return this.brokenBy;
  }

  /** Ring position of the next descriptor the device will look at. */
  get nextAvail(): number {
    return this.availPos;
  }
  set nextAvail(value: number) {
    this.availPos = (value & 0x7fff) % this.size;
  }
  /** Device's Driver Ring Wrap Counter (0 or 1). */
  get availWrapCounter(): number {
    return this.availWrap;
  }
  set availWrapCounter(value: number) {
    this.availWrap = value & 1;
  }
  /** Ring position where the next used descriptor goes. */
  get nextUsed(): number {
    return this.usedPos;
  }
  set nextUsed(value: number) {
    this.usedPos = (value & 0x7fff) % this.size;
    this.signalledValid = false;
  }
  get usedWrapCounter(): number {
    return this.usedWrap;
  }
  set usedWrapCounter(value: number) {
    this.usedWrap = value & 1;
    this.signalledValid = false;
  }

  /**
   * vhost-user VRING_BASE encoding for packed rings: bits 0-14 avail index,
   * 15 avail wrap counter, 16-30 used index, 31 used wrap counter.
   */
  get vringBase(): number {
    return (this.availPos | (this.availWrap << 15) | (this.usedPos << 16) | (this.usedWrap << 31)) >>> 0;
  }
  set vringBase(value: number) {
    this.nextAvail = value & 0x7fff;
    this.availWrap = (value >>> 15) & 1;
    this.nextUsed = (value >>> 16) & 0x7fff;
    this.usedWrap = (value >>> 31) & 1;
  }

  /**
   * Device reset of this queue: positions 0, wrap counters 1, nothing in
   * flight, the error cleared. The layout stays as configured.
   */
  reset(): void {
    this.availPos = 0;
    this.availWrap = 1;
    this.usedPos = 0;
    this.usedWrap = 1;
    this.sinceSignal = 0;
    this.signalledValid = false;
    this.dirty = false;
    this.brokenBy = null;
    if (this.inflightCount !== 0) this.inflight.fill(0);
    this.inflightCount = 0;
  }

  // ---- state as plain data (snapshots): kept apart from the pop/push hot path ----

  /** The queue's device-side state as plain data (the ring itself is in guest memory). */
  state(): PackedQueueState {
    const inflight: [number, number][] = [];
    if (this.inflightCount !== 0) {
      for (let id = 0; id < this.inflight.length; id++) {
        const slots = this.inflight[id]!;
        if (slots !== 0) inflight.push([id, slots]);
      }
    }
    return {
      version: QUEUE_STATE_VERSION,
      kind: 'packed',
      config: queueConfigState(this.config),
      availPos: this.availPos,
      availWrap: this.availWrap,
      usedPos: this.usedPos,
      usedWrap: this.usedWrap,
      sinceSignal: this.sinceSignal,
      signalledValid: this.signalledValid,
      dirty: this.dirty,
      inflight,
      broken: brokenQueueState(this.brokenBy),
    };
  }

  /**
   * Rebuilds a queue from {@link PackedQueue.state} over `mem` (the restored guest RAM). A
   * state that is not one `state()` could have written is `EINVAL`; a layout
   * outside `mem` is the constructor's VirtqueueError.
   */
  static fromState(mem: GuestMemory, state: PackedQueueState): PackedQueue {
    const config = checkedQueueState(state, 'packed');
    const q = new PackedQueue(mem, config);
    const size = q.size;
    q.availPos = int(state.availPos, 'availPos', 0, size - 1);
    q.availWrap = int(state.availWrap, 'availWrap', 0, 1);
    q.usedPos = int(state.usedPos, 'usedPos', 0, size - 1);
    q.usedWrap = int(state.usedWrap, 'usedWrap', 0, 1);
    q.sinceSignal = int(state.sinceSignal, 'sinceSignal', 0, 0xffff_ffff);
    q.signalledValid = bool(state.signalledValid, 'signalledValid');
    q.dirty = bool(state.dirty, 'dirty');
    if (!Array.isArray(state.inflight) || state.inflight.length > size)
      throw bad('inflight is not a list of at most queue-size entries');
    let slotsInFlight = 0;
    for (const entry of state.inflight as unknown[]) {
      if (!Array.isArray(entry) || entry.length !== 2) throw bad('an inflight entry is not [id, slots]');
      const id = int(entry[0], 'inflight id', 0, 0xffff);
      const slots = int(entry[1], 'inflight slots', 1, size);
      if (q.inflight[id] !== 0) throw bad(`buffer id ${id} is in flight twice`);
      slotsInFlight += slots;
      if (slotsInFlight > size) throw bad('more ring slots in flight than the queue has');
      q.inflight[id] = slots;
      q.inflightCount++;
    }
    q.brokenBy = checkedBroken(state.broken);
    return q;
  }

  /**
   * Copies the descriptor at ring position `slot` into `out` (the address as a
   * number: exact below 2^53, where all guest memory is). What vhost-user's
   * inflight records keep of a buffer just popped: its ring slots may hold used
   * descriptors by the time it has to be served again. Nothing is checked.
   */
  descriptorAt(slot: number, out: PackedDescriptor): void {
    if (!(slot >>> 0 === slot && slot < this.size)) throw new RangeError(`slot ${slot} is outside the ring`);
    const k = this.desc32 + 4 * slot;
    out.addr = this.descU32[k + 1]! * TWO_32 + this.descU32[k]!;
    out.len = this.descU32[k + 2]!;
    out.id = this.descU16[this.desc16 + 8 * slot + 6]!;
    out.flags = this.descU16[this.desc16 + 8 * slot + 7]!;
  }

  /**
   * A buffer popped before a restart and still in flight, rebuilt from copies
   * of its ring descriptors in ring order (vhost-user's inflight records) and
   * checked as popInto() checks them; its buffer ID (the last descriptor's) is
   * in flight again, taking `descriptors.length` ring slots, so its used
   * descriptor can be written. NEXT flags are not needed: the list is the
   * buffer. Positions and wrap counters do not move. Off the hot path.
   */
  restoreInflight(descriptors: readonly PackedDescriptor[]): DescriptorChain {
    if (this.brokenBy) throw this.brokenBy;
    const n = descriptors.length;
    if (n === 0 || n > this.size)
      this.fail('EINVAL', 'chain-too-long', `a buffer of ${n} descriptors in a queue of ${this.size}`);
    const chain = new ChainBuffer(4);
    for (let j = 0; j < n; j++) {
      const d = descriptors[j]!;
      const lo = d.addr % TWO_32;
      const hi = Math.floor(d.addr / TWO_32);
      if ((d.flags & VIRTQ_DESC_F_INDIRECT) !== 0) {
        if (n > 1) this.fail('EINVAL', 'indirect-in-chain', 'indirect descriptor inside a NEXT-linked list');
        this.walkIndirect(lo, hi, d.len, d.flags, chain);
        continue;
      }
      if (!(d.addr >= this.fastLo && d.len <= this.fastHi - d.addr) && !this.inMemory(d.addr, d.len))
        this.fail('EFAULT', 'descriptor-out-of-memory', describeBadBuffer(lo, hi, d.len));
      if ((d.flags & VIRTQ_DESC_F_WRITE) !== 0) chain.pushWritable(d.addr, d.len);
      else {
        if (chain.writableCount !== 0 && this.strictOrder)
          this.fail('EINVAL', 'write-before-read', `readable descriptor ${j} after a writable one`);
        chain.pushReadable(d.addr, d.len);
      }
    }
    const id = descriptors[n - 1]!.id;
    if (!(id >>> 0 === id && id < 65536)) this.fail('EINVAL', 'bad-used-id', `buffer id ${id} is not a u16`);
    if (this.inflight[id] !== 0)
      this.fail('EINVAL', 'buffer-id-in-use', `buffer id ${id} is already in flight`);
    this.inflight[id] = n;
    this.inflightCount++;
    chain.head = id;
    chain.descriptorCount = n;
    return chain.toDescriptorChain();
  }

  pop(): DescriptorChain | null {
    return this.popInto(this.scratch) ? this.scratch.toDescriptorChain() : null;
  }

  drain(onChain: (chain: ChainBuffer) => void, max = Number.POSITIVE_INFINITY): number {
    const chain = this.scratch;
    let n = 0;
    while (n < max && this.popInto(chain)) {
      n++;
      onChain(chain);
    }
    return n;
  }

  /** True when the descriptor at the device's position is available. */
  hasAvailable(): boolean {
    const flags = Atomics.load(this.descU16, this.desc16 + 8 * this.availPos + 7);
    return isAvail(flags, this.availWrap);
  }

  popInto(chain: ChainBuffer): boolean {
    if (this.brokenBy) throw this.brokenBy;
    const u32 = this.descU32;
    const u16 = this.descU16;
    const b32 = this.desc32;
    const b16 = this.desc16;
    const size = this.size;
    let p = this.availPos;
    let w = this.availWrap;
    // Acquire: the head's flags are written last by the driver, after the whole list.
    let flags = Atomics.load(u16, b16 + 8 * p + 7);
    if (!isAvail(flags, w)) return false;
    if ((flags & (VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_INDIRECT)) === 0) {
      // Single-descriptor buffer: the common case, without the list walk.
      const k = b32 + 4 * p;
      const lo = u32[k]!;
      const hi = u32[k + 1]!;
      const len = u32[k + 2]!;
      const addr = hi * TWO_32 + lo;
      if (!(addr >= this.fastLo && len <= this.fastHi - addr) && !this.inMemory(addr, len)) {
        this.fail('EFAULT', 'descriptor-out-of-memory', describeBadBuffer(lo, hi, len));
      }
      const bid = u16[b16 + 8 * p + 6]!;
      if (this.inflight[bid] !== 0)
        this.fail('EINVAL', 'buffer-id-in-use', `buffer id ${bid} is already in flight`);
      chain.setSingle(bid, addr, len, (flags & VIRTQ_DESC_F_WRITE) !== 0);
      this.inflight[bid] = 1;
      this.inflightCount++;
      if (++p === size) {
        this.availPos = 0;
        this.availWrap = w ^ 1;
      } else {
        this.availPos = p;
      }
      return true;
    }
    chain.reset();
    let count = 0;
    let id: number;
    for (;;) {
      count++;
      if (count > size)
        this.fail('EINVAL', 'chain-too-long', `descriptor list longer than the queue (${size})`);
      const k = b32 + 4 * p;
      const lo = u32[k]!;
      const hi = u32[k + 1]!;
      const len = u32[k + 2]!;
      if ((flags & VIRTQ_DESC_F_INDIRECT) !== 0) {
        if (count > 1)
          this.fail('EINVAL', 'indirect-in-chain', 'indirect descriptor inside a NEXT-linked list');
        this.walkIndirect(lo, hi, len, flags, chain);
      } else {
        const addr = hi * TWO_32 + lo;
        if (!(addr >= this.fastLo && len <= this.fastHi - addr) && !this.inMemory(addr, len)) {
          this.fail('EFAULT', 'descriptor-out-of-memory', describeBadBuffer(lo, hi, len));
        }
        if ((flags & VIRTQ_DESC_F_WRITE) !== 0) chain.pushWritable(addr, len);
        else {
          if (chain.writableCount !== 0 && this.strictOrder) {
            this.fail('EINVAL', 'write-before-read', `readable descriptor at ${p} after a writable one`);
          }
          chain.pushReadable(addr, len);
        }
      }
      const last = (flags & VIRTQ_DESC_F_NEXT) === 0;
      if (last) id = u16[b16 + 8 * p + 6]!; // the Buffer ID lives in the last descriptor
      if (++p === size) {
        p = 0;
        w ^= 1;
      }
      if (last) break;
      flags = u16[b16 + 8 * p + 7]!;
    }
    if (this.inflight[id!] !== 0)
      this.fail('EINVAL', 'buffer-id-in-use', `buffer id ${id!} is already in flight`);
    this.inflight[id!] = count;
    this.inflightCount++;
    chain.head = id!;
    chain.descriptorCount = count;
    this.availPos = p;
    this.availWrap = w;
    return true;
  }

  private walkIndirect(lo: number, hi: number, len: number, flags: number, chain: ChainBuffer): void {
    if (!this.indirect)
      this.fail('EINVAL', 'indirect-not-negotiated', 'indirect descriptor without VIRTIO_F_INDIRECT_DESC');
    if ((flags & VIRTQ_DESC_F_NEXT) !== 0)
      this.fail('EINVAL', 'indirect-with-next', 'indirect descriptor has NEXT set');
    if (len === 0 || (len & 15) !== 0) {
      this.fail(
        'EINVAL',
        'indirect-table-length',
        `indirect table length ${len} is 0 or not a multiple of 16`,
      );
    }
    const n = len >>> 4;
    if (n > MAX_INDIRECT_ENTRIES)
      this.fail('EINVAL', 'indirect-table-length', `indirect table of ${n} entries`);
    const mem = this.mem;
    const tableAddr = hi * TWO_32 + lo;
    const ri = mem.regionOf(tableAddr, len);
    if (ri < 0)
      this.fail('EFAULT', 'descriptor-out-of-memory', `indirect table: ${describeBadBuffer(lo, hi, len)}`);
    const region = mem.regions[ri]!;
    const view = region.view;
    const base = region.hostOffset + (tableAddr - region.start);
    // Entries are consecutive; NEXT and the ID are reserved inside the table.
    for (let j = 0; j < n; j++) {
      const o = base + 16 * j;
      const dlo = view.getUint32(o, true);
      const dhi = view.getUint32(o + 4, true);
      const dlen = view.getUint32(o + 8, true);
      const dflags = view.getUint16(o + 14, true);
      if ((dflags & VIRTQ_DESC_F_INDIRECT) !== 0)
        this.fail('EINVAL', 'nested-indirect', 'indirect descriptor inside an indirect table');
      const addr = dhi * TWO_32 + dlo;
      if (!(addr >= this.fastLo && dlen <= this.fastHi - addr) && !this.inMemory(addr, dlen)) {
        this.fail('EFAULT', 'descriptor-out-of-memory', describeBadBuffer(dlo, dhi, dlen));
      }
      if ((dflags & VIRTQ_DESC_F_WRITE) !== 0) chain.pushWritable(addr, dlen);
      else {
        if (chain.writableCount !== 0 && this.strictOrder) {
          this.fail('EINVAL', 'write-before-read', `readable indirect descriptor ${j} after a writable one`);
        }
        chain.pushReadable(addr, dlen);
      }
    }
  }

  /**
   * Same as {@link pushUsed}: every packed used descriptor is published by its
   * own flags store (release), so there is nothing to batch.
   */
  addUsed(id: number, len: number): void {
    this.pushUsed(id, len);
  }

  /** Nothing to do for packed rings (see {@link addUsed}). */
  publishUsed(): void {}

  pushUsed(id: number, len: number): void {
    if (!(id >>> 0 === id && id < 65536) || this.inflight[id] === 0) {
      throw new VirtqueueError('EINVAL', 'bad-used-id', `buffer id ${id} is not in flight`);
    }
    if (!(len >>> 0 === len))
      throw new VirtqueueError('EINVAL', 'bad-used-len', `used length ${len} is not a u32`);
    const count = this.inflight[id]!;
    this.inflight[id] = 0;
    this.inflightCount--;
    const p = this.usedPos;
    this.descU16[this.desc16 + 8 * p + 6] = id;
    this.descU32[this.desc32 + 4 * p + 2] = len;
    const flags = this.usedWrap ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0;
    // Release: id and len (and the reads of the buffer's descriptors) first. A plain store is
    // that on x86 (TSO, see store-order.ts); Atomics.store is a V8 builtin call and a full fence.
    if (STORES_VISIBLE_IN_ORDER) this.descU16[this.desc16 + 8 * p + 7] = flags;
    else Atomics.store(this.descU16, this.desc16 + 8 * p + 7, flags);
    let next = p + count;
    if (next >= this.size) {
      next -= this.size;
      this.usedWrap ^= 1;
    }
    this.usedPos = next;
    this.sinceSignal += count;
    this.dirty = true;
  }

  needsNotification(): boolean {
    if (!this.dirty) return false; // nothing used since the last decision
    this.dirty = false;
    const moved = this.sinceSignal;
    this.sinceSignal = 0;
    const valid = this.signalledValid;
    this.signalledValid = true;
    // The one full fence of the used side: the used descriptors' flags stores must be visible
    // before the loads of the driver's event suppression below (store-load order, which x86
    // does not keep for plain stores), or a driver that just enabled interrupts misses these.
    // A locked read-modify-write that changes nothing, on the device's own event area, is it.
    Atomics.add(this.devU16, this.devI + 1, 0);
    const flags = Atomics.load(this.drvU16, this.drvI + 1) & 3;
    if (flags === RING_EVENT_FLAGS_DISABLE) return false;
    if (flags !== RING_EVENT_FLAGS_DESC || !this.eventIdx) return true;
    if (!valid || moved >= this.size) return true;
    // Positions in the current lap's coordinates: the old one may be negative (previous lap).
    const now = this.usedPos;
    return packedNeedEvent(Atomics.load(this.drvU16, this.drvI), this.usedWrap, this.size, now, now - moved);
  }

  enableNotifications(): boolean {
    if (this.eventIdx) {
      Atomics.store(this.devU16, this.devI, this.availPos | (this.availWrap << 15));
      Atomics.store(this.devU16, this.devI + 1, RING_EVENT_FLAGS_DESC);
    } else {
      Atomics.store(this.devU16, this.devI + 1, RING_EVENT_FLAGS_ENABLE);
    }
    return this.hasAvailable();
  }

  disableNotifications(): void {
    Atomics.store(this.devU16, this.devI + 1, RING_EVENT_FLAGS_DISABLE);
  }

  /** Slow path of the buffer bounds check: look the region up and remember it. */
  private inMemory(addr: number, len: number): boolean {
    const ri = this.mem.regionOf(addr, len);
    if (ri < 0) return this.mem.covers(addr, len);
    const r = this.mem.regions[ri]!;
    this.fastLo = r.start;
    this.fastHi = r.end;
    return true;
  }

  private fail(code: 'EINVAL' | 'EFAULT', reason: VirtqueueErrorReason, message: string): never {
    const error = new VirtqueueError(code, reason, message);
    this.brokenBy = error;
    throw error;
  }
}

function isAvail(flags: number, wrap: number): boolean {
  return ((flags >>> 7) & 1) === wrap && ((flags >>> 15) & 1) !== wrap;
}

/** One packed ring descriptor as data (see {@link PackedQueue.descriptorAt}). */
export interface PackedDescriptor {
  addr: number;
  len: number;
  id: number;
  flags: number;
}
