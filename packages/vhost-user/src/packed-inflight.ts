/**
 * Inflight I/O tracking for a packed ring (vhost-user.rst "Inflight I/O
 * tracking", QueueRegionPacked / DescStatePacked). A used descriptor may land
 * on the ring slot of a buffer still in flight, so the record keeps a copy of
 * every descriptor popped, in entries taken from a free list:
 *
 *   offset  0 u64 features (0)   16 u16 used_idx          32 + 32 j: DescStatePacked j
 *           8 u16 version (1)    18 u16 old_used_idx          +0 u8 inflight  +2 u16 next
 *          10 u16 desc_num       20 u8  used_wrap_counter     +4 u16 last     +6 u16 num
 *          12 u16 free_head      21 u8  old_used_wrap_counter +8 u64 counter +16 u16 id
 *          14 u16 old_free_head  22 padding[7]               +18 u16 flags  +20 u32 len
 *                                                            +24 u64 addr
 *
 * The `old_*` fields are the last consistent state; every operation moves
 * the current fields and commits them to `old_*` as its last stores:
 *
 * - a buffer is popped: its head entry (old_free_head) gets num, counter and
 *   inflight; each descriptor is copied into the entry at free_head and
 *   free_head follows the list; last, old_free_head = free_head;
 * - a buffer is used (one at a time: each packed used descriptor is
 *   published by its own flags store): its entries go back to the free list
 *   (free_head), used_idx and used_wrap_counter advance past its slots, the
 *   used descriptor is written, its head's inflight is cleared, and the
 *   `old_*` fields take the current values (old_free_head first, old_used_idx
 *   last).
 *
 * After a crash, `recover` commits the interrupted operation if its used
 * descriptor reached the ring (the slot at old_used_idx reads as used) and
 * rolls it back otherwise, clears the free entries, and serves every head
 * still in flight again by counter. Popping resumes its slots past used_idx:
 * the slots in flight are exactly those between the used and avail positions.
 */
import { errnoError } from '@rxvmm/errno';
import {
  type ChainBuffer,
  type DescriptorChain,
  type PackedDescriptor,
  type PackedQueue,
  VirtqueueError,
} from '@rxvmm/virtio-ring';
import { InflightTrackedQueue } from './inflight-queue.js';
import {
  INFLIGHT_VERSION,
  PACKED_DESC_BYTES,
  PACKED_HEADER_BYTES,
  type RegionViews,
} from './inflight-region.js';

// Header fields (u16 indices, then u8 indices).
const VERSION = 4;
const DESC_NUM = 5;
const FREE_HEAD = 6;
const OLD_FREE_HEAD = 7;
const USED_IDX = 8;
const OLD_USED_IDX = 9;
const USED_WRAP = 20;
const OLD_USED_WRAP = 21;
// DescStatePacked j: u8 index, u16 indices, u32 indices of its fields.
const E8 = PACKED_DESC_BYTES;
const E16 = PACKED_DESC_BYTES / 2;
const E32 = PACKED_DESC_BYTES / 4;
const INFLIGHT_0 = PACKED_HEADER_BYTES;
const NEXT_0 = PACKED_HEADER_BYTES / 2 + 1;
const LAST_0 = PACKED_HEADER_BYTES / 2 + 2;
const NUM_0 = PACKED_HEADER_BYTES / 2 + 3;
const COUNTER_0 = PACKED_HEADER_BYTES / 4 + 2;
const ID_0 = PACKED_HEADER_BYTES / 2 + 8;
const FLAGS_0 = PACKED_HEADER_BYTES / 2 + 9;
const LEN_0 = PACKED_HEADER_BYTES / 4 + 5;
const ADDR_0 = PACKED_HEADER_BYTES / 4 + 6;
const TWO_32 = 2 ** 32;

/** A buffer found in flight: its head entry, its descriptors in ring order and its counter. */
interface FoundBuffer {
  entry: number;
  counter: number;
  descriptors: PackedDescriptor[];
}

/** Ring positions after a recovery, and the buffers to serve again in pop order. */
export interface PackedRecovery {
  buffers: { entry: number; descriptors: PackedDescriptor[] }[];
  usedIdx: number;
  usedWrap: number;
  availIdx: number;
  availWrap: number;
}

/** One packed queue's region of the inflight memory. */
export class PackedInflightRecord {
  private readonly u8: Uint8Array;
  private readonly u16: Uint16Array;
  private readonly u32: Uint32Array;
  private counter = 0;
  private readonly scratch: PackedDescriptor = { addr: 0, len: 0, id: 0, flags: 0 };

  constructor(
    views: RegionViews,
    readonly descNum: number,
  ) {
    if (PACKED_HEADER_BYTES + PACKED_DESC_BYTES * descNum > views.u8.byteLength)
      throw new RangeError(`a packed record of ${descNum} entries does not fit ${views.u8.byteLength} bytes`);
    this.u8 = views.u8;
    this.u16 = views.u16;
    this.u32 = views.u32;
  }

  get version(): number {
    return this.u16[VERSION] as number;
  }

  /** Current used position and Device Ring Wrap Counter as recorded. */
  get usedIdx(): number {
    return this.u16[USED_IDX] as number;
  }
  get usedWrap(): number {
    return this.u8[USED_WRAP] as number;
  }

  /** First use: every entry free (a list 0 → 1 → ... → desc_num), used position as given. Version last. */
  initialize(usedIdx: number, usedWrap: number): void {
    this.u8.fill(0, 0, PACKED_HEADER_BYTES + PACKED_DESC_BYTES * this.descNum);
    for (let j = 0; j < this.descNum; j++) this.u16[NEXT_0 + E16 * j] = j + 1;
    this.u16[DESC_NUM] = this.descNum;
    this.u16[FREE_HEAD] = 0;
    this.u16[OLD_FREE_HEAD] = 0;
    this.u16[USED_IDX] = usedIdx;
    this.u16[OLD_USED_IDX] = usedIdx;
    this.u8[USED_WRAP] = usedWrap;
    this.u8[OLD_USED_WRAP] = usedWrap;
    this.counter = 0;
    this.u16[VERSION] = INFLIGHT_VERSION;
  }

  /**
   * The spec's reconnect procedure: commit or roll back the interrupted
   * operation (`usedWritten(slot, wrap)` says whether the ring slot holds a
   * used descriptor of that lap), clear the free entries, and list the buffers
   * in flight by counter with the positions popping and using resume at. A
   * record no back-end could have written is EINVAL.
   */
  recover(ringSize: number, usedWritten: (slot: number, wrap: number) => boolean): PackedRecovery {
    const version = this.version;
    if (version !== INFLIGHT_VERSION)
      throw errnoError(
        'EINVAL',
        `inflight record version ${version} (this back-end writes ${INFLIGHT_VERSION})`,
      );
    const n = this.descNum;
    if (this.u16[DESC_NUM] !== n)
      throw errnoError('EINVAL', `inflight record of ${this.u16[DESC_NUM]} entries, the region has ${n}`);
    if (ringSize > n)
      throw errnoError('EINVAL', `a ring of ${ringSize} entries does not fit an inflight record of ${n}`);
    for (const [i, what] of [
      [USED_IDX, 'used_idx'],
      [OLD_USED_IDX, 'old_used_idx'],
    ] as const)
      if ((this.u16[i] as number) >= ringSize)
        throw errnoError(
          'EINVAL',
          `inflight record: ${what} ${this.u16[i]} is outside the ring of ${ringSize}`,
        );
    if ((this.u8[USED_WRAP] as number) > 1 || (this.u8[OLD_USED_WRAP] as number) > 1)
      throw errnoError('EINVAL', 'inflight record: a wrap counter is neither 0 nor 1');
    const oldUsed = this.u16[OLD_USED_IDX] as number;
    const oldWrap = this.u8[OLD_USED_WRAP] as number;
    if (this.u16[USED_IDX] !== oldUsed || this.u8[USED_WRAP] !== oldWrap) {
      // A used operation was interrupted. Its commit had begun (the used descriptor is in the ring)
      // when old_free_head already equals free_head: while it runs, free_head is the entry being
      // freed. Before that, old_* is where the used descriptor goes, and the ring says whether it
      // got there. (Checking the ring alone, as the spec does, misreads a commit cut between
      // old_used_wrap_counter and old_used_idx after the ring wrapped.)
      if (this.u16[FREE_HEAD] === this.u16[OLD_FREE_HEAD] || usedWritten(oldUsed, oldWrap)) this.commit();
    }
    // Roll back whatever was not committed.
    this.u16[FREE_HEAD] = this.u16[OLD_FREE_HEAD] as number;
    this.u16[USED_IDX] = this.u16[OLD_USED_IDX] as number;
    this.u8[USED_WRAP] = this.u8[OLD_USED_WRAP] as number;
    // Free entries are not in flight (a pop cut short left its head marked).
    let f = this.u16[FREE_HEAD] as number;
    for (let steps = 0; f < n && steps < n; steps++) {
      this.u8[INFLIGHT_0 + E8 * f] = 0;
      f = this.u16[NEXT_0 + E16 * f] as number;
    }
    const found: FoundBuffer[] = [];
    let slots = 0;
    let next = 0;
    for (let e = 0; e < n; e++) {
      if (this.u8[INFLIGHT_0 + E8 * e] === 0) continue;
      const buffer = this.readBuffer(e, ringSize);
      slots += buffer.descriptors.length;
      if (slots > ringSize)
        throw errnoError(
          'EINVAL',
          `inflight record: more descriptors in flight than the ring of ${ringSize} holds`,
        );
      found.push(buffer);
      if (buffer.counter >= next) next = buffer.counter + 1;
    }
    found.sort((a, b) => a.counter - b.counter || a.entry - b.entry);
    this.counter = next;
    const usedIdx = this.u16[USED_IDX] as number;
    const usedWrap = this.u8[USED_WRAP] as number;
    let availIdx = usedIdx + slots;
    let availWrap = usedWrap;
    if (availIdx >= ringSize) {
      availIdx -= ringSize;
      availWrap ^= 1;
    }
    return {
      buffers: found.map(({ entry, descriptors }) => ({ entry, descriptors })),
      usedIdx,
      usedWrap,
      availIdx,
      availWrap,
    };
  }

  /**
   * A buffer was popped from ring slots [slot0, slot0 + slots) (mod the ring
   * size): each descriptor is copied from the ring into a free entry. Returns
   * the buffer's head entry.
   */
  popped(queue: PackedQueue, slot0: number, slots: number): number {
    const size = queue.size;
    const e = this.u16[OLD_FREE_HEAD] as number;
    let free = this.u16[FREE_HEAD] as number;
    const d = this.scratch;
    for (let j = 0; j < slots; j++) {
      if (free >= this.descNum) throw errnoError('ENOSPC', 'inflight record: no free entry left');
      if (j === 0) {
        const c = this.counter++;
        this.u16[NUM_0 + E16 * e] = 0;
        this.u32[COUNTER_0 + E32 * e] = c % TWO_32;
        this.u32[COUNTER_0 + E32 * e + 1] = Math.floor(c / TWO_32);
        this.u8[INFLIGHT_0 + E8 * e] = 1;
      }
      if (j === slots - 1) this.u16[LAST_0 + E16 * e] = free;
      this.u16[NUM_0 + E16 * e] = j + 1;
      let slot = slot0 + j;
      if (slot >= size) slot -= size;
      queue.descriptorAt(slot, d);
      this.u32[ADDR_0 + E32 * free] = d.addr % TWO_32;
      this.u32[ADDR_0 + E32 * free + 1] = Math.floor(d.addr / TWO_32);
      this.u32[LEN_0 + E32 * free] = d.len;
      this.u16[FLAGS_0 + E16 * free] = d.flags;
      this.u16[ID_0 + E16 * free] = d.id;
      free = this.u16[NEXT_0 + E16 * free] as number;
      this.u16[FREE_HEAD] = free;
    }
    this.u16[OLD_FREE_HEAD] = free;
    return e;
  }

  /**
   * Head entry `e`'s buffer is about to be used: its entries go back to the
   * free list and the used position moves past its slots. Then the ring writes
   * the used descriptor, then {@link usedEnd}.
   */
  usedBegin(e: number, ringSize: number): void {
    const num = this.u16[NUM_0 + E16 * e] as number;
    const last = this.u16[LAST_0 + E16 * e] as number;
    this.u16[NEXT_0 + E16 * last] = this.u16[FREE_HEAD] as number;
    this.u16[FREE_HEAD] = e;
    let used = (this.u16[USED_IDX] as number) + num;
    let wrap = this.u8[USED_WRAP] as number;
    if (used >= ringSize) {
      used -= ringSize;
      wrap ^= 1;
    }
    this.u16[USED_IDX] = used;
    this.u8[USED_WRAP] = wrap;
  }

  /** The used descriptor is in the ring: the buffer is out of flight and the record commits. */
  usedEnd(e: number): void {
    this.u8[INFLIGHT_0 + E8 * e] = 0;
    this.commit();
  }

  /** Whether entry `e` heads a buffer in flight whose last descriptor carries `id`. */
  isInflightHead(e: number, id: number): boolean {
    return (
      e < this.descNum &&
      this.u8[INFLIGHT_0 + E8 * e] === 1 &&
      this.u16[ID_0 + E16 * (this.u16[LAST_0 + E16 * e] as number)] === id
    );
  }

  /** old_* := current. old_free_head first: `recover` reads it as "the commit has begun". */
  private commit(): void {
    this.u16[OLD_FREE_HEAD] = this.u16[FREE_HEAD] as number;
    this.u8[OLD_USED_WRAP] = this.u8[USED_WRAP] as number;
    this.u16[OLD_USED_IDX] = this.u16[USED_IDX] as number;
  }

  private readBuffer(e: number, ringSize: number): FoundBuffer {
    const num = this.u16[NUM_0 + E16 * e] as number;
    if (num < 1 || num > ringSize)
      throw errnoError('EINVAL', `inflight record: entry ${e} heads a buffer of ${num} descriptors`);
    const descriptors: PackedDescriptor[] = [];
    let j = e;
    for (let k = 0; k < num; k++) {
      if (j >= this.descNum)
        throw errnoError('EINVAL', `inflight record: entry ${e} links outside the record`);
      descriptors.push({
        addr: (this.u32[ADDR_0 + E32 * j + 1] as number) * TWO_32 + (this.u32[ADDR_0 + E32 * j] as number),
        len: this.u32[LEN_0 + E32 * j] as number,
        id: this.u16[ID_0 + E16 * j] as number,
        flags: this.u16[FLAGS_0 + E16 * j] as number,
      });
      if (k === num - 1 && j !== this.u16[LAST_0 + E16 * e])
        throw errnoError(
          'EINVAL',
          `inflight record: entry ${e}'s descriptor list does not end at its last entry`,
        );
      j = this.u16[NEXT_0 + E16 * j] as number;
    }
    const k = COUNTER_0 + E32 * e;
    return { entry: e, counter: (this.u32[k + 1] as number) * TWO_32 + (this.u32[k] as number), descriptors };
  }
}

/** A PackedQueue served with its inflight record (see the file comment). */
export class PackedInflightQueue extends InflightTrackedQueue<PackedQueue> {
  /** Head entry of each buffer ID in flight. */
  private readonly entryOf = new Uint16Array(65536);

  constructor(
    queue: PackedQueue,
    readonly record: PackedInflightRecord,
    resubmits: DescriptorChain[] = [],
    entries: readonly { id: number; entry: number }[] = [],
  ) {
    super(queue, resubmits);
    for (const { id, entry } of entries) this.entryOf[id] = entry;
  }

  /**
   * Builds the tracked queue of a ring about to be served: a record left by an
   * earlier back-end is recovered (positions and wrap counters from the
   * record, its buffers in flight first); a fresh one is initialized at the
   * queue's used position (SET_VRING_BASE).
   */
  static open(queue: PackedQueue, record: PackedInflightRecord): PackedInflightQueue {
    if (record.version === 0) {
      record.initialize(queue.nextUsed, queue.usedWrapCounter);
      return new PackedInflightQueue(queue, record);
    }
    const probe: PackedDescriptor = { addr: 0, len: 0, id: 0, flags: 0 };
    const r = record.recover(queue.size, (slot, wrap) => {
      queue.descriptorAt(slot, probe);
      // A used descriptor of this lap has both AVAIL and USED equal to the wrap counter.
      return ((probe.flags >>> 7) & 1) === wrap && ((probe.flags >>> 15) & 1) === wrap;
    });
    queue.nextUsed = r.usedIdx;
    queue.usedWrapCounter = r.usedWrap;
    queue.nextAvail = r.availIdx;
    queue.availWrapCounter = r.availWrap;
    const chains = r.buffers.map((b) => queue.restoreInflight(b.descriptors));
    return new PackedInflightQueue(
      queue,
      record,
      chains,
      chains.map((c, i) => ({ id: c.head, entry: (r.buffers[i] as { entry: number }).entry })),
    );
  }

  addUsed(id: number, len: number): void {
    const e = id >>> 0 === id && id < 65536 ? (this.entryOf[id] as number) : -1;
    if (e < 0 || !this.record.isInflightHead(e, id))
      throw new VirtqueueError('EINVAL', 'bad-used-id', `buffer id ${id} is not in flight`);
    if (!(len >>> 0 === len))
      throw new VirtqueueError('EINVAL', 'bad-used-len', `used length ${len} is not a u32`);
    this.record.usedBegin(e, this.queue.size);
    this.queue.addUsed(id, len); // the used descriptor's flags store publishes it
    this.record.usedEnd(e);
  }

  protected popTracked(): DescriptorChain | null {
    const slot0 = this.queue.nextAvail;
    const chain = this.queue.pop();
    if (chain !== null) this.track(chain.head, slot0);
    return chain;
  }

  protected popIntoTracked(chain: ChainBuffer): boolean {
    const slot0 = this.queue.nextAvail;
    if (!this.queue.popInto(chain)) return false;
    this.track(chain.head, slot0);
    return true;
  }

  /** Packed used descriptors are published one by one, each recorded around its own store. */
  protected published(): void {}

  private track(id: number, slot0: number): void {
    let slots = this.queue.nextAvail - slot0;
    if (slots <= 0) slots += this.queue.size;
    this.entryOf[id] = this.record.popped(this.queue, slot0, slots);
  }
}
