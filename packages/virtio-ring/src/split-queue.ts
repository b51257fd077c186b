import type { GuestMemory } from '@rxvmm/guest-memory';
import { queueAreaAlignments, queueAreaSizes } from '@rxvmm/virtio';
import { ChainBuffer, type DescriptorChain } from './chain.js';
import {
  MAX_INDIRECT_ENTRIES,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_USED_F_NO_NOTIFY,
} from './constants.js';
import { VirtqueueError, type VirtqueueErrorReason } from './errors.js';
import { vringNeedEvent } from './need-event.js';
import { checkQueueSize, describeBadBuffer, type QueueConfig, ringArea } from './queue-config.js';
import {
  bad,
  bool,
  brokenQueueState,
  checkedBroken,
  checkedQueueState,
  int,
  QUEUE_STATE_VERSION,
  queueConfigState,
  type SplitQueueState,
} from './queue-state.js';
import { STORES_VISIBLE_IN_ORDER } from './store-order.js';
import type { Virtqueue } from './virtqueue.js';

const TWO_32 = 4294967296;

/**
 * Device side of a split virtqueue (virtio 1.x §2.7). Every guest-written
 * value (indices, heads, next links, addresses, lengths) is validated before
 * use; a violation throws a {@link VirtqueueError} and leaves the queue broken.
 * Ring fields are read through typed-array views precomputed at construction,
 * the avail index through Atomics (acquire); the used index is a release store
 * (plain on x86, see `STORES_VISIBLE_IN_ORDER` in store-order.ts) and a full fence before
 * the notification decision.
 */
export class SplitQueue implements Virtqueue {
  readonly size: number;
  readonly eventIdx: boolean;
  readonly indirect: boolean;
  readonly strictOrder: boolean;
  readonly config: Readonly<QueueConfig>;
  private readonly mem: GuestMemory;
  private readonly mask: number;
  // Descriptor table: u32 index of desc 0 (addr lo) and u16 index of desc 0.
  private readonly descU32: Uint32Array;
  private readonly descU16: Uint16Array;
  private readonly desc32: number;
  private readonly desc16: number;
  // Available ring (u16 indices of flags, idx, ring[0], used_event).
  private readonly availU16: Uint16Array;
  private readonly availFlagsI: number;
  private readonly availIdxI: number;
  private readonly availRingI: number;
  private readonly usedEventI: number;
  // Used ring.
  private readonly usedU16: Uint16Array;
  private readonly usedU32: Uint32Array;
  private readonly usedFlagsI: number;
  private readonly usedIdxI: number;
  private readonly usedRing32: number;
  private readonly availEventI: number;

  private next = 0;
  /** Last avail idx read from the guest; chains up to it are known to be published. */
  private availShadow = 0;
  private used = 0;
  private signalled = 0;
  private signalledValid = false;
  /** Used entries were added since the last needsNotification(). */
  private dirty = false;
  /** Used elements added but the used index not stored yet. */
  private unpublished = false;
  private brokenBy: VirtqueueError | null = null;
  /** Bounds of the region the last buffer was in: most buffers hit it without a lookup. */
  private fastLo = 0;
  private fastHi = -1;
  private readonly scratch = new ChainBuffer();

  constructor(mem: GuestMemory, config: QueueConfig) {
    const size = config.size;
    checkQueueSize(size, config.maxSize, false);
    const bytes = queueAreaSizes(size, false);
    const align = queueAreaAlignments(false);
    const desc = ringArea(mem, config.descTable, bytes.desc, align.desc, 'descriptor table');
    const avail = ringArea(mem, config.driverArea, bytes.driver, align.driver, 'available ring');
    const used = ringArea(mem, config.deviceArea, bytes.device, align.device, 'used ring');
    this.mem = mem;
    this.config = { ...config };
    this.size = size;
    this.mask = size - 1;
    this.eventIdx = config.eventIdx ?? false;
    this.indirect = config.indirect ?? false;
    this.strictOrder = config.strictOrder ?? true;
    this.descU32 = desc.region.u32;
    this.descU16 = desc.region.u16;
    this.desc32 = desc.host / 4;
    this.desc16 = desc.host / 2;
    this.availU16 = avail.region.u16;
    this.availFlagsI = avail.host / 2;
    this.availIdxI = this.availFlagsI + 1;
    this.availRingI = this.availFlagsI + 2;
    this.usedEventI = this.availRingI + size;
    this.usedU16 = used.region.u16;
    this.usedU32 = used.region.u32;
    this.usedFlagsI = used.host / 2;
    this.usedIdxI = this.usedFlagsI + 1;
    this.usedRing32 = used.host / 4 + 1;
    this.availEventI = this.usedFlagsI + 2 + 4 * size;
  }

  get broken(): VirtqueueError | null {
    return this.brokenBy;
  }

  /** Next avail index the device will read (vhost-user GET/SET_VRING_BASE). */
  get nextAvail(): number {
    return this.next;
  }
  set nextAvail(value: number) {
    this.next = value & 0xffff;
    this.availShadow = this.next;
  }

  /** Next used index the device will write. */
  get nextUsed(): number {
    return this.used;
  }
  set nextUsed(value: number) {
    this.used = value & 0xffff;
    this.signalledValid = false;
  }

  /**
   * Device reset of this queue: indices back to 0, the error cleared. The
   * driver re-initialises the ring memory; the layout stays as configured.
   */
  reset(): void {
    this.next = 0;
    this.availShadow = 0;
    this.used = 0;
    this.signalled = 0;
    this.signalledValid = false;
    this.dirty = false;
    this.unpublished = false;
    this.brokenBy = null;
  }

  // ---- state as plain data (snapshots): kept apart from the pop/push hot path ----

  /** The queue's device-side state as plain data (the ring itself is in guest memory). */
  state(): SplitQueueState {
    return {
      version: QUEUE_STATE_VERSION,
      kind: 'split',
      config: queueConfigState(this.config),
      nextAvail: this.next,
      availShadow: this.availShadow,
      nextUsed: this.used,
      signalledUsed: this.signalled,
      signalledValid: this.signalledValid,
      dirty: this.dirty,
      unpublished: this.unpublished,
      broken: brokenQueueState(this.brokenBy),
    };
  }

  /**
   * Rebuilds a queue from {@link SplitQueue.state} over `mem` (the restored guest RAM). A
   * state that is not one `state()` could have written is `EINVAL`; a layout
   * outside `mem` is the constructor's VirtqueueError.
   */
  static fromState(mem: GuestMemory, state: SplitQueueState): SplitQueue {
    const config = checkedQueueState(state, 'split');
    const q = new SplitQueue(mem, config);
    const u16 = (v: unknown, what: string) => int(v, what, 0, 0xffff);
    q.next = u16(state.nextAvail, 'nextAvail');
    q.availShadow = u16(state.availShadow, 'availShadow');
    if (((q.availShadow - q.next) & 0xffff) > q.size)
      throw bad(`availShadow ${q.availShadow} is more than the queue size ahead of nextAvail ${q.next}`);
    q.used = u16(state.nextUsed, 'nextUsed');
    q.signalled = u16(state.signalledUsed, 'signalledUsed');
    q.signalledValid = bool(state.signalledValid, 'signalledValid');
    q.dirty = bool(state.dirty, 'dirty');
    q.unpublished = bool(state.unpublished, 'unpublished');
    q.brokenBy = checkedBroken(state.broken);
    return q;
  }

  /**
   * The chain whose head descriptor is `head`, walked and checked as pop()
   * does, without reading the available ring or moving any index: a chain
   * popped before a restart and still in flight (vhost-user's inflight
   * records) is served again from its descriptors, which the driver leaves
   * alone until the chain is used. Off the hot path.
   */
  restoreInflight(head: number): DescriptorChain {
    if (this.brokenBy) throw this.brokenBy;
    if (!(head >>> 0 === head && head < this.size))
      this.fail('EINVAL', 'head-out-of-range', `head ${head} >= queue size ${this.size}`);
    const chain = new ChainBuffer(4);
    chain.head = head;
    this.walk(head, chain);
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

  /** True when the driver has published chains the device has not popped yet. */
  hasAvailable(): boolean {
    if (this.next !== this.availShadow) return true;
    return Atomics.load(this.availU16, this.availIdxI) !== this.next;
  }

  // popInto stays small enough for V8 to inline it into the caller's loop: the rare paths
  // (reading the driver's avail idx, the multi-descriptor walk, errors) are calls.
  popInto(chain: ChainBuffer): boolean {
    if (this.brokenBy !== null) throw this.brokenBy;
    const next = this.next;
    if (next === this.availShadow && !this.refreshAvail(next)) return false;
    const head = this.availU16[this.availRingI + (next & this.mask)]!;
    if (head >= this.size)
      this.fail('EINVAL', 'head-out-of-range', `head ${head} >= queue size ${this.size}`);
    const u32 = this.descU32;
    const k = this.desc32 + 4 * head;
    const flags = u32[k + 3]! & 0xffff; // flags, then next, in the descriptor's last word
    if ((flags & (VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_INDIRECT)) === 0) {
      // Single-descriptor chain: the common case, without the walk.
      const lo = u32[k]!;
      const hi = u32[k + 1]!;
      const len = u32[k + 2]!;
      const addr = hi * TWO_32 + lo;
      if (!(addr >= this.fastLo && len <= this.fastHi - addr) && !this.inMemory(addr, len)) {
        this.fail('EFAULT', 'descriptor-out-of-memory', describeBadBuffer(lo, hi, len));
      }
      chain.setSingle(head, addr, len, (flags & VIRTQ_DESC_F_WRITE) !== 0);
    } else {
      chain.reset();
      chain.head = head;
      this.walk(head, chain);
    }
    this.next = (next + 1) & 0xffff;
    return true;
  }

  /** Reads the driver's avail idx (acquire: ring entries below it are published); false when nothing new. */
  private refreshAvail(next: number): boolean {
    const idx = Atomics.load(this.availU16, this.availIdxI);
    if (((idx - next) & 0xffff) > this.size) {
      this.fail('EINVAL', 'avail-idx-jump', `avail idx ${idx} is more than ${this.size} ahead of ${next}`);
    }
    this.availShadow = idx;
    return idx !== next;
  }

  private walk(head: number, chain: ChainBuffer): void {
    const u32 = this.descU32;
    const u16 = this.descU16;
    const b32 = this.desc32;
    const b16 = this.desc16;
    const size = this.size;
    let i = head;
    let ttl = size;
    let count = 0;
    for (;;) {
      if (ttl === 0)
        this.fail('EINVAL', 'chain-too-long', `chain from head ${head} is longer than the queue (loop?)`);
      ttl--;
      count++;
      const k = b32 + 4 * i;
      const lo = u32[k]!;
      const hi = u32[k + 1]!;
      const len = u32[k + 2]!;
      const flags = u16[b16 + 8 * i + 6]!;
      if ((flags & VIRTQ_DESC_F_INDIRECT) !== 0) {
        this.walkIndirect(lo, hi, len, flags, chain);
        break;
      }
      const addr = hi * TWO_32 + lo;
      if (!(addr >= this.fastLo && len <= this.fastHi - addr) && !this.inMemory(addr, len)) {
        this.fail('EFAULT', 'descriptor-out-of-memory', describeBadBuffer(lo, hi, len));
      }
      if ((flags & VIRTQ_DESC_F_WRITE) !== 0) chain.pushWritable(addr, len);
      else {
        if (chain.writableCount !== 0 && this.strictOrder) {
          this.fail('EINVAL', 'write-before-read', `readable descriptor ${i} after a writable one`);
        }
        chain.pushReadable(addr, len);
      }
      if ((flags & VIRTQ_DESC_F_NEXT) === 0) break;
      i = u16[b16 + 8 * i + 7]!;
      if (i >= size) this.fail('EINVAL', 'next-out-of-range', `next ${i} >= queue size ${size}`);
    }
    chain.descriptorCount = count;
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
    // The table need not be aligned: DataView reads any offset.
    const view = region.view;
    const base = region.hostOffset + (tableAddr - region.start);
    let j = 0;
    let ttl = n;
    for (;;) {
      if (ttl === 0) this.fail('EINVAL', 'chain-too-long', 'indirect chain is longer than its table (loop?)');
      ttl--;
      const o = base + 16 * j;
      const dlo = view.getUint32(o, true);
      const dhi = view.getUint32(o + 4, true);
      const dlen = view.getUint32(o + 8, true);
      const dflags = view.getUint16(o + 12, true);
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
      if ((dflags & VIRTQ_DESC_F_NEXT) === 0) break;
      j = view.getUint16(o + 14, true);
      if (j >= n) this.fail('EINVAL', 'next-out-of-range', `indirect next ${j} >= table entries ${n}`);
    }
  }

  pushUsed(head: number, len: number): void {
    this.addUsed(head, len);
    this.publishUsed();
  }

  /**
   * Writes a used element without moving the used index yet: a batch of
   * addUsed() costs one release store in {@link publishUsed} (which
   * needsNotification() also does) instead of one per element.
   */
  addUsed(head: number, len: number): void {
    // One test for both; the messages are built in a call, which keeps addUsed small enough to inline.
    if (!(head >>> 0 === head && head < this.size && len >>> 0 === len)) rejectUsed(head, len, this.size);
    const used = this.used;
    const k = this.usedRing32 + 2 * (used & this.mask);
    this.usedU32[k] = head;
    this.usedU32[k + 1] = len;
    this.used = (used + 1) & 0xffff;
    this.dirty = true;
    this.unpublished = true;
  }

  /** Makes every added used element visible to the driver (release store of used idx). */
  publishUsed(): void {
    if (!this.unpublished) return;
    this.unpublished = false;
    // Release: the elements (and the reads of their descriptors) are visible first. On x86 a
    // plain store is that (TSO, see store-order.ts); Atomics.store is a call into a V8 builtin
    // and a full fence, which per chain cost a third of pushUsed's time.
    if (STORES_VISIBLE_IN_ORDER) this.usedU16[this.usedIdxI] = this.used;
    else Atomics.store(this.usedU16, this.usedIdxI, this.used);
  }

  needsNotification(): boolean {
    this.publishUsed();
    if (!this.dirty) return false; // nothing used since the last decision
    this.dirty = false;
    // The one full fence of the used side: the used idx store must be visible before the loads
    // of the driver's flags / used_event below (store-load order, which x86 does not keep for
    // plain stores), or a driver that just re-enabled interrupts misses this one. A sequentially
    // consistent store (xchg on x86-64) of the index it already holds is that fence.
    Atomics.store(this.usedU16, this.usedIdxI, this.used);
    const old = this.signalled;
    const valid = this.signalledValid;
    const now = this.used;
    this.signalled = now;
    this.signalledValid = true;
    if (!this.eventIdx)
      return (Atomics.load(this.availU16, this.availFlagsI) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
    if (!valid) return true;
    return vringNeedEvent(Atomics.load(this.availU16, this.usedEventI), now, old);
  }

  enableNotifications(): boolean {
    if (this.eventIdx) Atomics.store(this.usedU16, this.availEventI, this.next);
    else
      Atomics.store(this.usedU16, this.usedFlagsI, this.usedU16[this.usedFlagsI]! & ~VIRTQ_USED_F_NO_NOTIFY);
    // Atomics are sequentially consistent: the store above is ordered before this load (the spec's full barrier).
    return this.hasAvailable();
  }

  disableNotifications(): void {
    // With EVENT_IDX the driver kicks only when it crosses avail_event, which stays where it is.
    if (!this.eventIdx)
      Atomics.store(this.usedU16, this.usedFlagsI, this.usedU16[this.usedFlagsI]! | VIRTQ_USED_F_NO_NOTIFY);
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

/** A used element the device itself got wrong (not guest input: the queue is not broken). */
function rejectUsed(head: number, len: number, size: number): never {
  if (!(head >>> 0 === head && head < size))
    throw new VirtqueueError('EINVAL', 'bad-used-id', `used head ${head} is not a descriptor index`);
  throw new VirtqueueError('EINVAL', 'bad-used-len', `used length ${len} is not a u32`);
}
