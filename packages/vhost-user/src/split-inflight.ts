/**
 * Inflight I/O tracking for a split ring (vhost-user.rst "Inflight I/O
 * tracking", QueueRegionSplit / DescStateSplit):
 *
 *   offset  0  u64 features (0)        16 + 16 i: DescStateSplit of head i
 *           8  u16 version (1)                 +0  u8  inflight
 *          10  u16 desc_num                    +1  u8  padding[5]
 *          12  u16 last_batch_head             +6  u16 next (the last batch, as a list)
 *          14  u16 used_idx                    +8  u64 counter (pop order)
 *
 * The order of stores, so that a crash between any two of them leaves a
 * record `recover` reads right:
 *
 * - a chain is popped: counter of its head, then inflight = 1 (a crash in
 *   between leaves it out of flight: it is still in the available ring after
 *   the last recorded chain and is popped again);
 * - a batch of used entries: for each head, next = last_batch_head and
 *   last_batch_head = head (before the used index moves); the ring's used
 *   index is stored (the batch is published); then inflight = 0 for each head
 *   and used_idx = the ring's used index. A crash in between is seen as
 *   used_idx != the ring's used index: the last (ring idx - used_idx) heads of
 *   the batch list were published, and are cleared.
 *
 * After a restart every head still marked was popped and never published:
 * served again in counter order, and the ring resumes popping at
 * used idx + their number, which is where the dead back-end stopped.
 */
import { errnoError } from '@rxvmm/errno';
import type { ChainBuffer, DescriptorChain, SplitQueue } from '@rxvmm/virtio-ring';
import { InflightTrackedQueue } from './inflight-queue.js';
import {
  INFLIGHT_VERSION,
  type RegionViews,
  SPLIT_DESC_BYTES,
  SPLIT_HEADER_BYTES,
} from './inflight-region.js';

// Header fields as u16 indices.
const VERSION = 4;
const DESC_NUM = 5;
const LAST_BATCH_HEAD = 6;
const USED_IDX = 7;
// DescStateSplit i: inflight at u8[INFLIGHT_0 + 16 i], next at u16[NEXT_0 + 8 i], counter at u32[COUNTER_0 + 4 i] (lo, hi).
const INFLIGHT_0 = SPLIT_HEADER_BYTES;
const NEXT_0 = (SPLIT_HEADER_BYTES + 6) / 2;
const COUNTER_0 = (SPLIT_HEADER_BYTES + 8) / 4;
const U8_STRIDE = SPLIT_DESC_BYTES;
const U16_STRIDE = SPLIT_DESC_BYTES / 2;
const U32_STRIDE = SPLIT_DESC_BYTES / 4;
const TWO_32 = 2 ** 32;

/** What a restart finds in a split record. */
export interface SplitRecovery {
  /** Heads popped and never used, in the order they were popped. */
  heads: number[];
  /** Where popping resumes: the ring's used index + heads.length. */
  nextAvail: number;
}

/** One split queue's region of the inflight memory. */
export class SplitInflightRecord {
  private readonly u8: Uint8Array;
  private readonly u16: Uint16Array;
  private readonly u32: Uint32Array;
  /** The next pop's counter. */
  private counter = 0;

  constructor(
    views: RegionViews,
    /** Entries in the region: the frontend's queue size, at least the ring's. */
    readonly descNum: number,
  ) {
    if (SPLIT_HEADER_BYTES + SPLIT_DESC_BYTES * descNum > views.u8.byteLength)
      throw new RangeError(`a split record of ${descNum} entries does not fit ${views.u8.byteLength} bytes`);
    this.u8 = views.u8;
    this.u16 = views.u16;
    this.u32 = views.u32;
  }

  /** 0 until the region is first used; {@link INFLIGHT_VERSION} after. */
  get version(): number {
    return this.u16[VERSION] as number;
  }

  /** The first use of the region: nothing in flight, `usedIdx` is the ring's used index. Version last. */
  initialize(usedIdx: number): void {
    for (let i = 0; i < this.descNum; i++) {
      this.u8[INFLIGHT_0 + U8_STRIDE * i] = 0;
      this.u16[NEXT_0 + U16_STRIDE * i] = 0;
      this.u32[COUNTER_0 + U32_STRIDE * i] = 0;
      this.u32[COUNTER_0 + U32_STRIDE * i + 1] = 0;
    }
    this.u32[0] = 0; // features
    this.u32[1] = 0;
    this.u16[DESC_NUM] = this.descNum;
    this.u16[LAST_BATCH_HEAD] = 0;
    this.u16[USED_IDX] = usedIdx & 0xffff;
    this.counter = 0;
    this.u16[VERSION] = INFLIGHT_VERSION;
  }

  /**
   * The spec's reconnect procedure over a record left by an earlier back-end:
   * closes the batch that was published but not cleared, then lists the heads
   * still in flight by counter. `ringUsedIdx` is the used index in guest
   * memory. A record no back-end could have written (hostile or foreign) is EINVAL.
   */
  recover(ringUsedIdx: number, ringSize: number): SplitRecovery {
    const version = this.version;
    if (version !== INFLIGHT_VERSION)
      throw errnoError(
        'EINVAL',
        `inflight record version ${version} (this back-end writes ${INFLIGHT_VERSION})`,
      );
    if (this.u16[DESC_NUM] !== this.descNum)
      throw errnoError(
        'EINVAL',
        `inflight record of ${this.u16[DESC_NUM]} entries, the region has ${this.descNum}`,
      );
    if (ringSize > this.descNum)
      throw errnoError(
        'EINVAL',
        `a ring of ${ringSize} entries does not fit an inflight record of ${this.descNum}`,
      );
    const batch = (ringUsedIdx - (this.u16[USED_IDX] as number)) & 0xffff;
    if (batch > ringSize)
      throw errnoError(
        'EINVAL',
        `inflight record: used idx ${this.u16[USED_IDX]} is ${batch} behind the ring's ${ringUsedIdx} (ring of ${ringSize})`,
      );
    let head = this.u16[LAST_BATCH_HEAD] as number;
    for (let k = 0; k < batch; k++) {
      if (head >= ringSize)
        throw errnoError('EINVAL', `inflight record: head ${head} in the last batch is outside the ring`);
      this.u8[INFLIGHT_0 + U8_STRIDE * head] = 0;
      head = this.u16[NEXT_0 + U16_STRIDE * head] as number;
    }
    this.u16[USED_IDX] = ringUsedIdx & 0xffff;
    const inflight: { head: number; counter: number }[] = [];
    let next = 0;
    for (let i = 0; i < this.descNum; i++) {
      if (this.u8[INFLIGHT_0 + U8_STRIDE * i] === 0) continue;
      if (i >= ringSize)
        throw errnoError(
          'EINVAL',
          `inflight record: head ${i} is in flight but outside the ring of ${ringSize}`,
        );
      const counter = this.readCounter(i);
      inflight.push({ head: i, counter });
      if (counter >= next) next = counter + 1;
    }
    inflight.sort((a, b) => a.counter - b.counter || a.head - b.head);
    this.counter = next;
    return { heads: inflight.map((e) => e.head), nextAvail: (ringUsedIdx + inflight.length) & 0xffff };
  }

  /** A chain was popped: its counter, then inflight. */
  popped(head: number): void {
    const c = this.counter++;
    const k = COUNTER_0 + U32_STRIDE * head;
    this.u32[k] = c % TWO_32;
    this.u32[k + 1] = Math.floor(c / TWO_32);
    this.u8[INFLIGHT_0 + U8_STRIDE * head] = 1;
  }

  /** A used entry joins the batch being built (before the used index moves). */
  used(head: number): void {
    this.u16[NEXT_0 + U16_STRIDE * head] = this.u16[LAST_BATCH_HEAD] as number;
    this.u16[LAST_BATCH_HEAD] = head;
  }

  /** After the used index store: a head of the published batch is no longer in flight. */
  cleared(head: number): void {
    this.u8[INFLIGHT_0 + U8_STRIDE * head] = 0;
  }

  /** After the batch's heads are cleared: the record agrees with the ring again. */
  setUsedIdx(usedIdx: number): void {
    this.u16[USED_IDX] = usedIdx;
  }

  private readCounter(i: number): number {
    const k = COUNTER_0 + U32_STRIDE * i;
    return (this.u32[k + 1] as number) * TWO_32 + (this.u32[k] as number);
  }
}

/** A SplitQueue served with its inflight record (see the file comment for the order of stores). */
export class SplitInflightQueue extends InflightTrackedQueue<SplitQueue> {
  /** Heads added since the last publication (the batch whose records close after it). */
  private batch: Uint16Array;
  private batchLen = 0;

  constructor(
    queue: SplitQueue,
    readonly record: SplitInflightRecord,
    resubmits: DescriptorChain[] = [],
  ) {
    super(queue, resubmits);
    this.batch = new Uint16Array(queue.size);
  }

  /**
   * Builds the tracked queue of a ring about to be served: a record left by an
   * earlier back-end is recovered (popping resumes where it stopped, its chains
   * in flight first); a fresh one is initialized at the ring's used index and
   * popping starts at `queue.nextAvail` (SET_VRING_BASE).
   */
  static open(queue: SplitQueue, record: SplitInflightRecord): SplitInflightQueue {
    if (record.version === 0) {
      record.initialize(queue.nextUsed);
      return new SplitInflightQueue(queue, record);
    }
    const r = record.recover(queue.nextUsed, queue.size);
    queue.nextAvail = r.nextAvail;
    return new SplitInflightQueue(
      queue,
      record,
      r.heads.map((head) => queue.restoreInflight(head)),
    );
  }

  addUsed(head: number, len: number): void {
    this.queue.addUsed(head, len); // checks head and len first
    this.record.used(head);
    if (this.batchLen === this.batch.length) {
      // Only a driver republishing heads faster than they are published gets here.
      const grown = new Uint16Array(this.batch.length * 2);
      grown.set(this.batch);
      this.batch = grown;
    }
    this.batch[this.batchLen++] = head;
  }

  protected popTracked(): DescriptorChain | null {
    const chain = this.queue.pop();
    if (chain !== null) this.record.popped(chain.head);
    return chain;
  }

  protected popIntoTracked(chain: ChainBuffer): boolean {
    if (!this.queue.popInto(chain)) return false;
    this.record.popped(chain.head);
    return true;
  }

  protected published(): void {
    const n = this.batchLen;
    if (n === 0) return;
    for (let k = 0; k < n; k++) this.record.cleared(this.batch[k] as number);
    this.record.setUsedIdx(this.queue.nextUsed);
    this.batchLen = 0;
  }
}
