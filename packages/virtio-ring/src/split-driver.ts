import { errnoError } from '@rxvmm/errno';
import { queueAreaSizes } from '@rxvmm/virtio';
import type { Segment } from './chain.js';
import {
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_USED_F_NO_NOTIFY,
} from './constants.js';
import type { GuestMemory } from '@rxvmm/guest-memory';
import { vringNeedEvent } from './need-event.js';
import { checkQueueSize, type QueueConfig } from './queue-config.js';

/** A used element as the driver collects it. */
export interface UsedElement {
  /** Head descriptor index (split) or buffer ID (packed), as returned by `add`. */
  id: number;
  len: number;
}

/** Options of one `add` call. */
export interface AddOptions {
  /**
   * Put the segments in an indirect table at this guest address (16 bytes per
   * segment, owned by the caller until the buffer is used). Needs `indirect`.
   */
  indirectTable?: bigint;
}

/**
 * Driver side of a split virtqueue: what a guest's virtio driver does, over
 * the same memory layout, through {@link GuestMemory}. Used by tests, benches
 * and guest programs; the device side must not be able to tell it from Linux.
 * Bookkeeping (free list, chain lengths) lives on the host side, never in
 * memory the device could scribble on.
 */
export class SplitDriver {
  readonly size: number;
  readonly config: Readonly<QueueConfig>;
  private readonly mem: GuestMemory;
  private readonly eventIdx: boolean;
  private readonly freeNext: Uint16Array;
  private freeHead = 0;
  private free: number;
  /** Descriptors taken by each in-flight head (0 = free). */
  private readonly chainLen: Uint16Array;
  private readonly chainNext: Uint16Array;
  private availIdx = 0;
  private kickedAt = 0;
  private lastUsed = 0;

  constructor(mem: GuestMemory, config: QueueConfig) {
    checkQueueSize(config.size, config.maxSize, false);
    this.mem = mem;
    this.config = { ...config };
    this.size = config.size;
    this.eventIdx = config.eventIdx ?? false;
    this.free = this.size;
    this.freeNext = new Uint16Array(this.size);
    for (let i = 0; i < this.size; i++) this.freeNext[i] = i + 1;
    this.chainLen = new Uint16Array(this.size);
    this.chainNext = new Uint16Array(this.size);
    // A fresh ring: flags and indices zero (the transport's reset state).
    const bytes = queueAreaSizes(this.size, false);
    mem.write(config.driverArea, new Uint8Array(bytes.driver));
    mem.write(config.deviceArea, new Uint8Array(bytes.device));
  }

  /** Free descriptors left. */
  get numFree(): number {
    return this.free;
  }

  /** Avail idx published so far. */
  get availIndex(): number {
    return this.availIdx;
  }

  /**
   * Makes a buffer available: device-readable segments first, then
   * device-writable ones. Returns the head index (the id of the used element).
   */
  add(readable: readonly Segment[], writable: readonly Segment[], options: AddOptions = {}): number {
    const total = readable.length + writable.length;
    if (total === 0) throw errnoError('EINVAL', 'a buffer needs at least one segment');
    const indirect = options.indirectTable !== undefined;
    if (indirect && !this.config.indirect)
      throw errnoError('EINVAL', 'VIRTIO_F_INDIRECT_DESC not negotiated');
    const need = indirect ? 1 : total;
    if (need > this.free) throw errnoError('ENOSPC', `need ${need} descriptors, ${this.free} free`);
    const mem = this.mem;
    const descs: number[] = [];
    for (let i = 0; i < need; i++) {
      descs.push(this.freeHead);
      this.freeHead = this.freeNext[this.freeHead]!;
    }
    this.free -= need;
    const head = descs[0]!;
    const segs = [
      ...readable.map((s) => [s, 0] as const),
      ...writable.map((s) => [s, VIRTQ_DESC_F_WRITE] as const),
    ];
    if (indirect) {
      const table = options.indirectTable!;
      segs.forEach(([s, w], j) => {
        const last = j === segs.length - 1;
        writeDesc(
          mem,
          table + BigInt(16 * j),
          s.addr,
          s.len,
          w | (last ? 0 : VIRTQ_DESC_F_NEXT),
          last ? 0 : j + 1,
        );
      });
      writeDesc(mem, this.descAddr(head), table, 16 * total, VIRTQ_DESC_F_INDIRECT, 0);
    } else {
      segs.forEach(([s, w], j) => {
        const last = j === segs.length - 1;
        const next = last ? 0 : descs[j + 1]!;
        writeDesc(mem, this.descAddr(descs[j]!), s.addr, s.len, w | (last ? 0 : VIRTQ_DESC_F_NEXT), next);
        this.chainNext[descs[j]!] = next;
      });
    }
    this.chainLen[head] = need;
    const slot = this.availIdx & (this.size - 1);
    mem.writeU16(this.config.driverArea + 4n + BigInt(2 * slot), head);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    // Release: descriptors and the ring entry are visible before the index moves.
    mem.storeReleaseU16(this.config.driverArea + 2n, this.availIdx);
    return head;
  }

  /** After adding a batch: must the device be notified (kicked)? */
  needsKick(): boolean {
    const old = this.kickedAt;
    const now = this.availIdx;
    this.kickedAt = now;
    if (old === now) return false;
    if (this.eventIdx) {
      const availEvent = this.mem.loadAcquireU16(this.config.deviceArea + 4n + BigInt(8 * this.size));
      return vringNeedEvent(availEvent, now, old);
    }
    return (this.mem.loadAcquireU16(this.config.deviceArea) & VIRTQ_USED_F_NO_NOTIFY) === 0;
  }

  /** Next used element, or null. Throws EIO when the device returns an id that is not in flight. */
  getUsed(): UsedElement | null {
    const usedIdx = this.mem.loadAcquireU16(this.config.deviceArea + 2n);
    if (usedIdx === this.lastUsed) return null;
    const slot = this.lastUsed & (this.size - 1);
    const elem = this.config.deviceArea + 4n + BigInt(8 * slot);
    const id = this.mem.readU32(elem);
    const len = this.mem.readU32(elem + 4n);
    if (id >= this.size || this.chainLen[id] === 0)
      throw errnoError('EIO', `device used id ${id}, which is not in flight`);
    this.lastUsed = (this.lastUsed + 1) & 0xffff;
    this.release(id);
    return { id, len };
  }

  /** Ask the device for no interrupts (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event left behind). */
  disableInterrupts(): void {
    if (this.eventIdx) this.mem.storeReleaseU16(this.usedEventAddr(), (this.lastUsed - 1) & 0xffff);
    else this.mem.storeReleaseU16(this.config.driverArea, VIRTQ_AVAIL_F_NO_INTERRUPT);
  }

  /** Ask for interrupts again (used_event = next used); true if used elements are already pending. */
  enableInterrupts(): boolean {
    if (this.eventIdx) this.mem.storeReleaseU16(this.usedEventAddr(), this.lastUsed);
    else this.mem.storeReleaseU16(this.config.driverArea, 0);
    return this.mem.loadAcquireU16(this.config.deviceArea + 2n) !== this.lastUsed;
  }

  private release(head: number): void {
    let n = this.chainLen[head]!;
    this.chainLen[head] = 0;
    let d = head;
    this.free += n;
    while (--n > 0) {
      const next = this.chainNext[d]!;
      this.freeNext[d] = next;
      d = next;
    }
    this.freeNext[d] = this.freeHead;
    this.freeHead = head;
  }

  private descAddr(i: number): bigint {
    return this.config.descTable + BigInt(16 * i);
  }
  private usedEventAddr(): bigint {
    return this.config.driverArea + 4n + BigInt(2 * this.size);
  }
}

/** Writes one split (or packed-indirect-table) descriptor: addr, len, flags, next. */
function writeDesc(
  mem: GuestMemory,
  at: bigint,
  addr: bigint,
  len: number,
  flags: number,
  next: number,
): void {
  mem.writeU64(at, addr);
  mem.writeU32(at + 8n, len);
  mem.writeU16(at + 12n, flags);
  mem.writeU16(at + 14n, next);
}
