/**
 * The frontend's memory table, mapped into this process. Each region's fd is
 * mapped from file offset 0 for `mmap_offset + size` bytes (the offset need not
 * be page-aligned; libvhost-user does the same) and the fd is closed right
 * after: the mapping keeps the memory alive. Ring addresses arrive as frontend
 * virtual addresses and are translated to guest-physical ones here;
 * descriptors carry guest-physical addresses, served by `guestMemory` (a
 * `@rxvmm/guest-memory` GuestMemory, built by `MemoryTable.toGuestMemory`).
 */
import { fstatSync } from 'node:fs';
import { errnoError } from '@rxvmm/errno';
import { GuestMemory } from '@rxvmm/guest-memory';
import {
  close,
  detachBuffer,
  MAP_NORESERVE,
  MAP_SHARED,
  mappingBuffer,
  mmap,
  munmap,
  PROT_READ,
  PROT_WRITE,
} from '@rxvmm/sys';
import type { MemoryRegionDesc } from './message.js';
import { requireShrinkSeal } from './seals.js';

const U64_MAX = (1n << 64n) - 1n;
/** Largest single region this back-end maps (bytes); far above any test or QEMU guest here. */
export const MAX_REGION_SIZE = 1n << 40n;

export interface MapOptions {
  /** Refuse (EPERM) a region whose fd is not sealed with F_SEAL_SHRINK (see seals.ts). */
  requireSealed?: boolean;
}

/** One region of a memory table and the bytes of its fd, mapped from file offset 0. */
export interface MappedMemoryRegion extends MemoryRegionDesc {
  /** At least `mmapOffset + memorySize` bytes: the fd's contents from offset 0. */
  mapping: ArrayBuffer | SharedArrayBuffer;
}

interface MappedRegion extends MemoryRegionDesc {
  address: bigint;
  length: number;
  buffer?: ArrayBuffer;
}

/** A mapped SET_MEM_TABLE: each region's fd mapped into this process, exposed as `guestMemory` (a `GuestMemory`) and translated from frontend virtual addresses. */
export class MemoryTable {
  /** The table as guest memory: what descriptors' guest-physical addresses are served from. */
  readonly guestMemory: GuestMemory;
  private regions: MappedRegion[];
  private released = false;

  private constructor(regions: MappedRegion[]) {
    this.regions = regions;
    this.guestMemory = MemoryTable.toGuestMemory(
      regions.map((r) => {
        r.buffer = mappingBuffer(r.address, r.length);
        return { ...r, mapping: r.buffer };
      }),
    );
  }

  /**
   * The one conversion from a vhost-user memory table to a `GuestMemory`:
   * region i's guest-physical range [guestPhysAddr, +memorySize) is the bytes
   * [mmapOffset, +memorySize) of its fd's mapping (zero-copy views). `map()`
   * uses it for the regions it maps; call it yourself for mappings made
   * elsewhere (another thread, a test). Throws EINVAL for a region that does
   * not fit its mapping, GuestMemoryError (EFAULT) for overlapping regions or
   * one ending above 2^53.
   */
  static toGuestMemory(regions: readonly MappedMemoryRegion[]): GuestMemory {
    return new GuestMemory(
      regions.map((r) => {
        const end = r.mmapOffset + r.memorySize;
        if (end > BigInt(r.mapping.byteLength))
          throw errnoError(
            'EINVAL',
            `region at 0x${r.guestPhysAddr.toString(16)}: mmap offset + size 0x${end.toString(16)} is past its ${r.mapping.byteLength}-byte mapping`,
          );
        return {
          guestPhysAddr: r.guestPhysAddr,
          bytes: new Uint8Array(r.mapping, Number(r.mmapOffset), Number(r.memorySize)),
        };
      }),
    );
  }

  /**
   * Validates and maps a table. Takes ownership of `fds` (closed whatever happens).
   * Throws EINVAL for overlapping / empty / wrapping regions, and the mmap error
   * (e.g. EBADF, EACCES, ENODEV) for an fd that cannot be mapped, EPERM for an unsealed fd with
   * `requireSealed`; nothing stays mapped then.
   */
  static map(
    descs: readonly MemoryRegionDesc[],
    fds: readonly number[],
    options: MapOptions = {},
  ): MemoryTable {
    const mapped: MappedRegion[] = [];
    try {
      validate(descs);
      descs.forEach((d, i) => {
        const length = Number(d.mmapOffset + d.memorySize);
        if (options.requireSealed) requireShrinkSeal(fds[i] as number, i);
        // Touching a mapping past the end of its file is SIGBUS: refuse regions the file cannot back.
        const st = fstatSync(fds[i] as number);
        if (st.isFile() && BigInt(st.size) < d.mmapOffset + d.memorySize)
          throw errnoError('EINVAL', `region ${i} ends past the end of its fd (${st.size} bytes)`);
        const address = mmap(
          length,
          PROT_READ | PROT_WRITE,
          MAP_SHARED | MAP_NORESERVE,
          fds[i] as number,
          0n,
        );
        mapped.push({ ...d, address, length });
      });
      return new MemoryTable(mapped);
    } catch (error) {
      for (const r of mapped) munmap(r.address, r.length);
      throw error;
    } finally {
      for (const fd of fds) close(fd);
    }
  }

  get regionCount(): number {
    return this.regions.length;
  }

  /** Frontend virtual address → guest-physical address; the whole [va, va+len) must be in one region. */
  vaToGpa(va: bigint, len: bigint): bigint {
    for (const r of this.regions) {
      if (va >= r.userspaceAddr && va + len <= r.userspaceAddr + r.memorySize)
        return r.guestPhysAddr + (va - r.userspaceAddr);
    }
    throw errnoError('EFAULT', `frontend address 0x${va.toString(16)}+${len} is outside the memory table`);
  }

  /** Unmaps every region. Callers must have stopped every user of `guestMemory` first. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const r of this.regions) {
      // Defence in depth: a view that survived by mistake now reads as empty instead of faulting.
      if (r.buffer) detachBuffer(r.buffer);
      munmap(r.address, r.length);
    }
    this.regions = [];
  }
}

function validate(descs: readonly MemoryRegionDesc[]): void {
  for (const [i, d] of descs.entries()) {
    if (d.memorySize === 0n) throw errnoError('EINVAL', `region ${i} is empty`);
    if (d.memorySize > MAX_REGION_SIZE)
      throw errnoError('EINVAL', `region ${i} is larger than ${MAX_REGION_SIZE} bytes`);
    if (d.mmapOffset > MAX_REGION_SIZE) throw errnoError('EINVAL', `region ${i} mmap offset is too large`);
    if (d.guestPhysAddr + d.memorySize - 1n > U64_MAX || d.userspaceAddr + d.memorySize - 1n > U64_MAX)
      throw errnoError('EINVAL', `region ${i} wraps the 64-bit address space`);
    if (d.guestPhysAddr + d.memorySize > BigInt(Number.MAX_SAFE_INTEGER))
      throw errnoError('EINVAL', `region ${i} ends above 2^53 guest-physical`);
    for (const [j, e] of descs.entries()) {
      if (j <= i) continue;
      if (overlaps(d.guestPhysAddr, d.memorySize, e.guestPhysAddr, e.memorySize))
        throw errnoError('EINVAL', `regions ${i} and ${j} overlap in guest-physical space`);
      if (overlaps(d.userspaceAddr, d.memorySize, e.userspaceAddr, e.memorySize))
        throw errnoError('EINVAL', `regions ${i} and ${j} overlap in frontend address space`);
    }
  }
}

const overlaps = (a: bigint, alen: bigint, b: bigint, blen: bigint): boolean => a < b + blen && b < a + alen;
