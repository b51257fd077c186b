/**
 * Guest RAM: one memfd per memory slot, mapped MAP_SHARED once. The memfd is
 * what a vhost-user back-end maps in its own process (`fd`, `fdOffset`); the
 * mapping's address and length let any thread of this process make its own
 * zero-copy view (`mapGuestRam`), since N-API cannot share one ArrayBuffer
 * between threads.
 */
import { fstatSync } from 'node:fs';
import { errnoError } from '@rxvmm/errno';
import { GuestMemory } from '@rxvmm/guest-memory';
import type { MemoryRegion } from '@rxvmm/kvm';
import * as sys from '@rxvmm/sys';

/** What a worker needs to see a region: plain data, structured-cloneable. */
export interface GuestRamDescriptor {
  slot: number;
  guestPhysAddr: bigint;
  size: number;
  flags: number;
  /** Host virtual address of the mapping in this process. */
  address: bigint;
  fd: number;
  fdOffset: number;
}

/** What backs one slot: a mapping of `size` bytes at `address`, and the fd another process may map (or -1). */
export interface SlotBacking {
  readonly fd: number;
  readonly address: bigint;
  readonly size: number;
  readonly released: boolean;
  readonly buffer: ArrayBuffer;
  release(): void;
}

/**
 * A slot's memory taken from a file, copy-on-write (`LinuxMemoryRegionOptions.source`): a
 * MAP_PRIVATE mapping of [offset, offset+size) of `fd`. Pages are read from the file when the
 * guest or the VMM first touches them; a write gets a private copy, the file is never modified.
 * The caller may close `fd` once the region is set (the mapping keeps the file).
 */
export interface PrivateMemorySource {
  fd: number;
  /** Where the slot's bytes start in the file: a multiple of the page size. */
  offset: number;
  private: true;
}

const PAGE_SIZE = 4096;

/**
 * A private (copy-on-write) mapping of a file behind one slot. Its `fd` is -1: the memory is
 * this process's alone, a vhost-user back-end cannot map it (copy into a memfd slot for that).
 */
export class PrivateFileBacking implements SlotBacking {
  readonly fd = -1;
  readonly address: bigint;
  readonly size: number;
  #buffer: ArrayBuffer | undefined;
  #released = false;

  constructor(size: number, source: PrivateMemorySource) {
    if (!Number.isSafeInteger(size) || size <= 0)
      throw errnoError('EINVAL', `region size must be positive: ${size}`);
    if (source.private !== true) throw errnoError('EINVAL', 'a memory source must be private: true');
    if (!Number.isSafeInteger(source.offset) || source.offset < 0 || source.offset % PAGE_SIZE !== 0)
      throw errnoError('EINVAL', `a memory source's offset must be page-aligned: ${source.offset}`);
    // A page past the file's end would be SIGBUS on first touch, in the guest or here: refuse now.
    const fileSize = fstatSync(source.fd).size;
    if (fileSize < source.offset + size)
      throw errnoError(
        'EINVAL',
        `the memory source is ${fileSize} bytes; the region needs ${source.offset + size} (offset + size)`,
      );
    this.size = size;
    this.address = sys.mmap(
      size,
      sys.PROT_READ | sys.PROT_WRITE,
      sys.MAP_PRIVATE | sys.MAP_NORESERVE,
      source.fd,
      BigInt(source.offset),
    );
  }

  get released(): boolean {
    return this.#released;
  }

  get buffer(): ArrayBuffer {
    if (this.#released) throw errnoError('EBADF', 'guest memory region was released');
    this.#buffer ??= sys.mappingBuffer(this.address, this.size);
    return this.#buffer;
  }

  /** Detaches this thread's views and unmaps (the private copies go with it; the file is untouched). */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    if (this.#buffer) sys.detachBuffer(this.#buffer);
    this.#buffer = undefined;
    sys.munmap(this.address, this.size);
  }
}

/** The memfd and its mapping behind one slot; shared by the region objects of that slot. */
export class RamBacking implements SlotBacking {
  readonly fd: number;
  readonly address: bigint;
  readonly size: number;
  #buffer: ArrayBuffer | undefined;
  #released = false;

  constructor(slot: number, size: number) {
    if (!Number.isSafeInteger(size) || size <= 0)
      throw errnoError('EINVAL', `region size must be positive: ${size}`);
    this.size = size;
    this.fd = sys.memfdCreate(`rxvmm-guest-ram-slot${slot}`, sys.MFD_CLOEXEC);
    try {
      sys.ftruncate(this.fd, size);
      this.address = sys.mmap(
        size,
        sys.PROT_READ | sys.PROT_WRITE,
        sys.MAP_SHARED | sys.MAP_NORESERVE,
        this.fd,
        0n,
      );
    } catch (error) {
      sys.close(this.fd);
      throw error;
    }
  }

  get released(): boolean {
    return this.#released;
  }

  /** This thread's view of the mapping (made on first use). */
  get buffer(): ArrayBuffer {
    if (this.#released) throw errnoError('EBADF', 'guest memory region was released');
    this.#buffer ??= sys.mappingBuffer(this.address, this.size);
    return this.#buffer;
  }

  /** Detaches this thread's views (they read as empty), unmaps, closes the memfd. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    if (this.#buffer) sys.detachBuffer(this.#buffer);
    this.#buffer = undefined;
    sys.munmap(this.address, this.size);
    sys.close(this.fd);
  }
}

/** One slot as set by KVM_SET_USER_MEMORY_REGION. */
export class LinuxMemoryRegion implements MemoryRegion {
  readonly fdOffset = 0;
  #bytes: Uint8Array | undefined;

  constructor(
    readonly slot: number,
    readonly guestPhysAddr: bigint,
    readonly flags: number,
    readonly backing: SlotBacking,
  ) {}

  get size(): number {
    return this.backing.size;
  }

  get fd(): number {
    return this.backing.released ? -1 : this.backing.fd;
  }

  /** Host virtual address of the mapping (for views in other threads). */
  get address(): bigint {
    return this.backing.address;
  }

  get bytes(): Uint8Array {
    if (this.backing.released) return new Uint8Array(0);
    this.#bytes ??= new Uint8Array(this.backing.buffer);
    return this.#bytes;
  }

  /** The slot as plain data (address, size, memfd), to map it in another thread or process. */
  describe(): GuestRamDescriptor {
    return {
      slot: this.slot,
      guestPhysAddr: this.guestPhysAddr,
      size: this.size,
      flags: this.flags,
      address: this.address,
      fd: this.fd,
      fdOffset: this.fdOffset,
    };
  }
}

/** A region seen from another thread: a fresh view over the same mapping. The owner keeps it mapped. */
export class MappedRegion implements MemoryRegion {
  readonly slot: number;
  readonly guestPhysAddr: bigint;
  readonly size: number;
  readonly flags: number;
  readonly fd: number;
  readonly fdOffset: number;
  readonly address: bigint;
  #buffer: ArrayBuffer | undefined;
  #bytes: Uint8Array | undefined;

  constructor(descriptor: GuestRamDescriptor) {
    this.slot = descriptor.slot;
    this.guestPhysAddr = descriptor.guestPhysAddr;
    this.size = descriptor.size;
    this.flags = descriptor.flags;
    this.fd = descriptor.fd;
    this.fdOffset = descriptor.fdOffset;
    this.address = descriptor.address;
  }

  get bytes(): Uint8Array {
    if (!this.#bytes) {
      this.#buffer = sys.mappingBuffer(this.address, this.size);
      this.#bytes = new Uint8Array(this.#buffer);
    }
    return this.#bytes;
  }

  /** Detaches this thread's view (before the owner unmaps). */
  dispose(): void {
    if (this.#buffer) sys.detachBuffer(this.#buffer);
    this.#buffer = undefined;
    this.#bytes = undefined;
  }
}

/** Zero-copy views of guest RAM in the calling thread, from descriptors sent by the thread that owns the VM. */
export function mapGuestRam(descriptors: readonly GuestRamDescriptor[]): MappedRegion[] {
  return descriptors
    .map((d) => new MappedRegion(d))
    .sort((a, b) => (a.guestPhysAddr < b.guestPhysAddr ? -1 : 1));
}

// One-off accesses by region list. They are `GuestMemory`'s (`@rxvmm/guest-memory`); for repeated
// ones, build `new GuestMemory(vm.memoryRegions())` once per region set and keep it.

/** The region holding [gpa, gpa+length), or throws EFAULT (GuestMemoryError). */
export function findRegion<R extends MemoryRegion>(regions: readonly R[], gpa: bigint, length: number): R {
  const [host] = new GuestMemory(regions).resolve(gpa, length);
  // resolve() only returns a region built from one of these, so one has its bytes.
  return regions.find((region) => region.bytes === host.bytes) as R;
}

/** Copies `data` into guest RAM at `gpa` (adjacent regions may share it); EFAULT outside RAM. */
export function writeGuest(regions: readonly MemoryRegion[], gpa: bigint, data: Uint8Array): void {
  new GuestMemory(regions).write(gpa, data);
}

/** A zero-copy view of [gpa, gpa+length) of guest RAM (one region); EFAULT outside it. */
export function guestSlice(regions: readonly MemoryRegion[], gpa: bigint, length: number): Uint8Array {
  return new GuestMemory(regions).slice(gpa, length);
}
