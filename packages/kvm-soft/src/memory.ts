import { errnoError } from '@rxvmm/errno';
import { GuestMemory, MAX_GUEST_PHYS } from '@rxvmm/guest-memory';
import { MEM_LOG_DIRTY_PAGES, MEM_READONLY, type MemoryRegion, type MemoryRegionOptions } from '@rxvmm/kvm';

const PAGE = 4096;
const GUEST_PHYS_LIMIT = BigInt(MAX_GUEST_PHYS);
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
 * Bytes for a new slot: a SharedArrayBuffer (so worker threads can view it)
 * wherever there is one; a plain ArrayBuffer in a browser page that is not
 * cross-origin isolated, which has no SharedArrayBuffer (everything there runs
 * on the page's one thread anyway).
 */
function allocateRam(size: number): Uint8Array {
  return new Uint8Array(
    typeof globalThis.SharedArrayBuffer === 'function' ? new SharedArrayBuffer(size) : new ArrayBuffer(size),
  );
}

/**
 * SoftKvm guest RAM: each slot is a SharedArrayBuffer (see allocateRam), validated like KVM_SET_USER_MEMORY_REGION (page alignment, flags,
 * overlap `EEXIST`, size 0 deletes, a slot may move but not change size).
 * Guest-physical lookups are `GuestMemory`'s, rebuilt whenever the slots change.
 */
export class SoftMemory {
  #slots = new Map<number, SoftMemoryRegion>();
  #sorted: SoftMemoryRegion[] = [];
  #guest = new GuestMemory([]);
  /** The slot behind each of `#guest.regions`, by index. */
  #owners: SoftMemoryRegion[] = [];

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
      region = new SoftMemoryRegion(slot, gpa, size, flags, allocateRam(size));
      this.#slots.set(slot, region);
    }
    this.#sort();
    return region;
  }

  #sort(): void {
    this.#sorted = [...this.#slots.values()].sort((a, b) => (a.guestPhysAddr < b.guestPhysAddr ? -1 : 1));
    this.#guest = new GuestMemory(this.#sorted);
    const byBytes = new Map(this.#sorted.map((r) => [r.bytes, r]));
    this.#owners = this.#guest.regions.map((host) => byBytes.get(host.bytes) as SoftMemoryRegion);
  }

  regions(): readonly MemoryRegion[] {
    return this.#sorted;
  }

  /** The guest RAM as one bounds-checked `GuestMemory` (a new one after each slot change). */
  get guest(): GuestMemory {
    return this.#guest;
  }

  /** The region wholly containing [addr, addr + len), if any. */
  find(addr: bigint, len: number): MemoryRegion | undefined {
    // Slots end below 2^52: an address at or above MAX_GUEST_PHYS is in none (below it, a number is exact).
    if (addr < 0n || addr >= GUEST_PHYS_LIMIT) return undefined;
    return this.#owners[this.#guest.regionOf(Number(addr), len)];
  }

  /** A view of guest RAM (one slot); throws EFAULT (GuestMemoryError) outside RAM. */
  view(addr: bigint, len: number): Uint8Array {
    return this.#guest.slice(addr, len);
  }

  clear(): void {
    this.#slots.clear();
    this.#sort();
  }
}
