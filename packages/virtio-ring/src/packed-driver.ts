import { errnoError } from '@rxvmm/errno';
import type { Segment } from './chain.js';
import {
  RING_EVENT_FLAGS_DESC,
  RING_EVENT_FLAGS_DISABLE,
  RING_EVENT_FLAGS_ENABLE,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_USED,
  VIRTQ_DESC_F_WRITE,
} from './constants.js';
import type { GuestMemory } from '@rxvmm/guest-memory';
import { packedNeedEvent } from './need-event.js';
import { checkQueueSize, type QueueConfig } from './queue-config.js';
import type { AddOptions, UsedElement } from './split-driver.js';

/**
 * Driver side of a packed virtqueue, following the spec's driver algorithm:
 * descriptors written in ring order with the avail/used bits of their lap, the
 * head's flags stored last (release); used descriptors recognised by both bits
 * equal to the driver's used wrap counter. Buffer IDs are 0..size-1.
 */
export class PackedDriver {
  readonly size: number;
  readonly config: Readonly<QueueConfig>;
  private readonly mem: GuestMemory;
  private readonly eventIdx: boolean;
  private availPos = 0;
  private availWrap = 1;
  private usedPos = 0;
  private usedWrap = 1;
  private free: number;
  private readonly freeIds: number[] = [];
  /** Ring slots per in-flight buffer ID (0 = free). */
  private readonly slots: Uint16Array;
  private added = 0;

  constructor(mem: GuestMemory, config: QueueConfig) {
    checkQueueSize(config.size, config.maxSize, true);
    this.mem = mem;
    this.config = { ...config };
    this.size = config.size;
    this.eventIdx = config.eventIdx ?? false;
    this.free = this.size;
    for (let i = this.size - 1; i >= 0; i--) this.freeIds.push(i);
    this.slots = new Uint16Array(this.size);
    // The descriptor ring starts zeroed; both suppression structures say "enable".
    mem.write(config.descTable, new Uint8Array(16 * this.size));
    mem.write(config.driverArea, new Uint8Array(4));
    mem.write(config.deviceArea, new Uint8Array(4));
  }

  get numFree(): number {
    return this.free;
  }

  /** Makes a buffer available; returns its buffer ID. */
  add(readable: readonly Segment[], writable: readonly Segment[], options: AddOptions = {}): number {
    const total = readable.length + writable.length;
    if (total === 0) throw errnoError('EINVAL', 'a buffer needs at least one segment');
    const indirect = options.indirectTable !== undefined;
    if (indirect && !this.config.indirect)
      throw errnoError('EINVAL', 'VIRTIO_F_INDIRECT_DESC not negotiated');
    const need = indirect ? 1 : total;
    if (need > this.free) throw errnoError('ENOSPC', `need ${need} descriptors, ${this.free} free`);
    const id = this.freeIds.pop()!;
    const mem = this.mem;
    const segs = [
      ...readable.map((s) => [s, 0] as const),
      ...writable.map((s) => [s, VIRTQ_DESC_F_WRITE] as const),
    ];
    const availBits = (wrap: number) => (wrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED);
    const headPos = this.availPos;
    const headWrap = this.availWrap;
    let headFlags: number;
    if (indirect) {
      const table = options.indirectTable!;
      segs.forEach(([s, w], j) => {
        this.writeDesc(table + BigInt(16 * j), s.addr, s.len, 0, w);
      });
      this.writeDesc(this.descAddr(headPos), table, 16 * total, id, 0);
      headFlags = VIRTQ_DESC_F_INDIRECT | availBits(headWrap);
      this.advance(1);
    } else {
      headFlags = 0;
      segs.forEach(([s, w], j) => {
        const flags = w | (j < segs.length - 1 ? VIRTQ_DESC_F_NEXT : 0) | availBits(this.availWrap);
        // Every descriptor but the head gets its flags now; the head's go last.
        this.writeDesc(this.descAddr(this.availPos), s.addr, s.len, id, j === 0 ? 0 : flags, j === 0);
        if (j === 0) headFlags = flags;
        this.advance(1);
      });
    }
    this.free -= need;
    this.slots[id] = need;
    this.added += need;
    mem.storeReleaseU16(this.descAddr(headPos) + 14n, headFlags);
    return id;
  }

  /** After adding a batch: must the device be notified? */
  needsKick(): boolean {
    const added = this.added;
    this.added = 0;
    if (added === 0) return false;
    const flags = this.mem.loadAcquireU16(this.config.deviceArea + 2n) & 3;
    if (flags !== RING_EVENT_FLAGS_DESC || !this.eventIdx) return flags !== RING_EVENT_FLAGS_DISABLE;
    if (added >= this.size) return true;
    const offWrap = this.mem.loadAcquireU16(this.config.deviceArea);
    return packedNeedEvent(offWrap, this.availWrap, this.size, this.availPos, this.availPos - added);
  }

  /** Next used buffer, or null. Throws EIO for an ID that is not in flight. */
  getUsed(): UsedElement | null {
    const at = this.descAddr(this.usedPos);
    const flags = this.mem.loadAcquireU16(at + 14n);
    const avail = (flags >>> 7) & 1;
    const used = (flags >>> 15) & 1;
    if (avail !== this.usedWrap || used !== this.usedWrap) return null;
    const id = this.mem.readU16(at + 12n);
    const len = this.mem.readU32(at + 8n);
    if (id >= this.size || this.slots[id] === 0)
      throw errnoError('EIO', `device used id ${id}, which is not in flight`);
    const n = this.slots[id]!;
    this.slots[id] = 0;
    this.free += n;
    this.freeIds.push(id);
    this.usedPos += n;
    if (this.usedPos >= this.size) {
      this.usedPos -= this.size;
      this.usedWrap ^= 1;
    }
    return { id, len };
  }

  /** Asks the device not to interrupt (driver event suppression: disable). */
  disableInterrupts(): void {
    this.mem.storeReleaseU16(this.config.driverArea + 2n, RING_EVENT_FLAGS_DISABLE);
  }

  /** Ask for interrupts again; true if a used buffer is already pending. */
  enableInterrupts(): boolean {
    if (this.eventIdx) {
      this.mem.storeReleaseU16(this.config.driverArea, this.usedPos | (this.usedWrap << 15));
      this.mem.storeReleaseU16(this.config.driverArea + 2n, RING_EVENT_FLAGS_DESC);
    } else {
      this.mem.storeReleaseU16(this.config.driverArea + 2n, RING_EVENT_FLAGS_ENABLE);
    }
    const flags = this.mem.loadAcquireU16(this.descAddr(this.usedPos) + 14n);
    return ((flags >>> 7) & 1) === this.usedWrap && ((flags >>> 15) & 1) === this.usedWrap;
  }

  private advance(n: number): void {
    this.availPos += n;
    if (this.availPos >= this.size) {
      this.availPos -= this.size;
      this.availWrap ^= 1;
    }
  }

  private writeDesc(
    at: bigint,
    addr: bigint,
    len: number,
    id: number,
    flags: number,
    skipFlags = false,
  ): void {
    this.mem.writeU64(at, addr);
    this.mem.writeU32(at + 8n, len);
    this.mem.writeU16(at + 12n, id);
    if (!skipFlags) this.mem.writeU16(at + 14n, flags);
  }

  private descAddr(i: number): bigint {
    return this.config.descTable + BigInt(16 * i);
  }
}
