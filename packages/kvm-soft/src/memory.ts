import { errnoError } from '@rxvmm/errno';
import { MEM_LOG_DIRTY_PAGES, MEM_READONLY } from '../backend/constants.js';
import type { MemoryRegion, MemoryRegionOptions } from '../backend/types.js';

const PAGE = 4096;
/** KVM_USER_MEM_SLOTS on x86. */
const MAX_SLOTS = 32764;

class SoftMemoryRegion implements MemoryRegion {
  readonly fd = -1;
  readonly fdOffset = 0;
  constructor(
    readonly slot: number,
    public guestPhysAddr: bigint,
    readonly size: number,
    public flags: number,
    readonly bytes: Uint8Array,
  ) {}
}

/**
 * SoftKvm guest RAM: each slot is a SharedArrayBuffer (so worker threads can
 * view it), validated like KVM_SET_USER_MEMORY_REGION (page alignment, flags,
 * overlap `EEXIST`, size 0 deletes, a slot may move but not change size).
 */
export class SoftMemory {
  #slots = new Map<number, SoftMemoryRegion>();
  #sorted: SoftMemoryRegion[] = [];

  set(options: MemoryRegionOptions): MemoryRegion | undefined {
    const { slot, guestPhysAddr: gpa, size } = options;
    const flags = options.flags ?? 0;
    if (!Number.isInteger(slot) || slot < 0 || slot >= MAX_SLOTS)
      throw errnoError('EINVAL', `bad slot ${slot}`);
    if (flags & ~(MEM_LOG_DIRTY_PAGES | MEM_READONLY))
      throw errnoError('EINVAL', `bad flags 0x${flags.toString(16)}`);
    if (!Number.isSafeInteger(size) || size < 0 || size % PAGE !== 0)
      throw errnoError('EINVAL', `size ${size} is not a page multiple`);
    if (gpa < 0n || gpa % BigInt(PAGE) !== 0n || gpa + BigInt(size) > 1n << 52n)
      throw errnoError('EINVAL', 'bad guest-physical address');
    const existing = this.#slots.get(slot);
    if (size === 0) {
      if (existing) this.#slots.delete(slot);
      this.#sort();
      return undefined;
    }
    if (existing && existing.size !== size) throw errnoError('EINVAL', `slot ${slot} cannot change size`);
    for (const r of this.#slots.values()) {
      if (r.slot === slot) continue;
      if (gpa < r.guestPhysAddr + BigInt(r.size) && r.guestPhysAddr < gpa + BigInt(size)) {
        throw errnoError('EEXIST', `overlaps slot ${r.slot}`);
      }
    }
    let region: SoftMemoryRegion;
    if (existing) {
      existing.guestPhysAddr = gpa; // move (and flag change) keeps the contents
      existing.flags = flags;
      region = existing;
    } else {
      region = new SoftMemoryRegion(slot, gpa, size, flags, new Uint8Array(new SharedArrayBuffer(size)));
      this.#slots.set(slot, region);
    }
    this.#sort();
    return region;
  }

  #sort(): void {
    this.#sorted = [...this.#slots.values()].sort((a, b) => (a.guestPhysAddr < b.guestPhysAddr ? -1 : 1));
  }

  regions(): readonly MemoryRegion[] {
    return this.#sorted;
  }

  /** The region wholly containing [addr, addr + len), if any. */
  find(addr: bigint, len: number): MemoryRegion | undefined {
    for (const r of this.#sorted) {
      if (addr >= r.guestPhysAddr && addr + BigInt(len) <= r.guestPhysAddr + BigInt(r.size)) return r;
    }
    return undefined;
  }

  /** A view of guest RAM; throws EFAULT outside RAM. */
  view(addr: bigint, len: number): Uint8Array {
    const r = this.find(addr, len);
    if (!r) throw errnoError('EFAULT', `guest-physical 0x${addr.toString(16)}+${len} is not RAM`);
    const off = Number(addr - r.guestPhysAddr);
    return r.bytes.subarray(off, off + len);
  }

  clear(): void {
    this.#slots.clear();
    this.#sorted = [];
  }
}
