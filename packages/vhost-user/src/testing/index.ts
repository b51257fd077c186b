/**
 * @rxvmm/vhost-user/testing: what a test frontend needs to drive a back-end
 * for real: guest RAM in a memfd mapped into this process (so its frontend
 * virtual addresses are genuine), a driver-side split queue laid out in it, and
 * fd / mapping counters for leak checks.
 */
import { ftruncateSync, readdirSync, readFileSync } from 'node:fs';
import { EventFd } from '@rxvmm/eventfd';
import { GuestMemory } from '@rxvmm/guest-memory';
import {
  addSeals,
  close,
  F_SEAL_GROW,
  F_SEAL_SHRINK,
  MAP_SHARED,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  mappingBuffer,
  memfdCreate,
  mmap,
  munmap,
  PROT_READ,
  PROT_WRITE,
} from '@rxvmm/sys';
import { queueAreaSizes } from '@rxvmm/virtio';
import { PackedDriver, SplitDriver } from '@rxvmm/virtio-ring';
import { type FrontendMemoryRegion, type FrontendQueue, PACKED_RING_START } from '../frontend.js';

/**
 * Guest RAM backed by a memfd, mapped MAP_SHARED into this process. With
 * `sealed` the memfd is sealed against shrinking and growing, as QEMU's
 * memory-backend-memfd does by default (what a `requireSealed` back-end wants).
 */
export class MemfdRam {
  readonly fd: number;
  readonly address: bigint;
  readonly bytes: Uint8Array;
  readonly memory: GuestMemory;
  private closed = false;

  constructor(
    readonly size: number,
    readonly guestPhysAddr = 0n,
    readonly sealed = false,
  ) {
    this.fd = memfdCreate('rxvmm-test-ram', MFD_CLOEXEC | (sealed ? MFD_ALLOW_SEALING : 0));
    ftruncateSync(this.fd, size);
    if (sealed) addSeals(this.fd, F_SEAL_SHRINK | F_SEAL_GROW);
    this.address = mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, this.fd, 0n);
    this.bytes = new Uint8Array(mappingBuffer(this.address, size));
    this.memory = new GuestMemory([{ guestPhysAddr, bytes: this.bytes }]);
  }

  /** The region as SET_MEM_TABLE describes it. */
  get region(): FrontendMemoryRegion {
    return {
      guestPhysAddr: this.guestPhysAddr,
      size: BigInt(this.size),
      userspaceAddr: this.address,
      fd: this.fd,
      fdOffset: 0n,
    };
  }

  /** Frontend virtual address of a guest-physical address. */
  va(gpa: bigint): bigint {
    return this.address + (gpa - this.guestPhysAddr);
  }

  /** Unmaps the RAM and closes the memfd. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    munmap(this.address, this.size);
    close(this.fd);
  }
}

/** A split queue's driver side in MemfdRam, plus its kick and call eventfds. */
export class TestQueue {
  readonly driver: SplitDriver;
  readonly kick = new EventFd();
  readonly call = new EventFd();
  readonly desc: bigint;
  readonly avail: bigint;
  readonly used: bigint;

  /** Lays the rings out at guest-physical `base` (4 KiB aligned areas). */
  constructor(
    readonly ram: MemfdRam,
    readonly size: number,
    base: bigint,
    eventIdx = false,
  ) {
    const bytes = queueAreaSizes(size, false);
    this.desc = base;
    this.avail = base + 0x1000n * BigInt(Math.ceil(bytes.desc / 0x1000));
    this.used = this.avail + 0x1000n * BigInt(Math.ceil(bytes.driver / 0x1000));
    this.driver = new SplitDriver(ram.memory, {
      size,
      descTable: this.desc,
      driverArea: this.avail,
      deviceArea: this.used,
      eventIdx,
    });
  }

  /** The queue as the frontend hands it over (frontend virtual addresses). */
  frontendQueue(): FrontendQueue {
    return {
      size: this.size,
      descUserAddr: this.ram.va(this.desc),
      availUserAddr: this.ram.va(this.avail),
      usedUserAddr: this.ram.va(this.used),
      kickFd: this.kick.fd,
      callFd: this.call.fd,
    };
  }

  /** Kicks the back-end if the ring asks for it. */
  kickIfNeeded(): void {
    if (this.driver.needsKick()) this.kick.write(1n);
  }

  /** Closes the kick and call eventfds. */
  close(): void {
    this.kick.close();
    this.call.close();
  }
}

/** The packed-ring counterpart of {@link TestQueue} (VIRTIO_F_RING_PACKED). */
export class TestPackedQueue {
  readonly driver: PackedDriver;
  readonly kick = new EventFd();
  readonly call = new EventFd();
  readonly desc: bigint;
  readonly driverEvent: bigint;
  readonly deviceEvent: bigint;

  /** Lays the descriptor ring and the two event suppression areas out at guest-physical `base`. */
  constructor(
    readonly ram: MemfdRam,
    readonly size: number,
    base: bigint,
    eventIdx = false,
  ) {
    const bytes = queueAreaSizes(size, true);
    this.desc = base;
    this.driverEvent = base + 0x1000n * BigInt(Math.ceil(bytes.desc / 0x1000));
    this.deviceEvent = this.driverEvent + 0x1000n;
    this.driver = new PackedDriver(ram.memory, {
      size,
      packed: true,
      descTable: this.desc,
      driverArea: this.driverEvent,
      deviceArea: this.deviceEvent,
      eventIdx,
    });
  }

  /** The queue as the frontend hands it over: descriptor ring, driver area, device area. */
  frontendQueue(): FrontendQueue {
    return {
      size: this.size,
      descUserAddr: this.ram.va(this.desc),
      availUserAddr: this.ram.va(this.driverEvent),
      usedUserAddr: this.ram.va(this.deviceEvent),
      base: PACKED_RING_START,
      kickFd: this.kick.fd,
      callFd: this.call.fd,
    };
  }

  /** Kicks the back-end if the ring asks for it. */
  kickIfNeeded(): void {
    if (this.driver.needsKick()) this.kick.write(1n);
  }

  /** Closes the kick and call eventfds. */
  close(): void {
    this.kick.close();
    this.call.close();
  }
}

/** Open fds of this process. */
export function countFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/**
 * Shared mappings of this process (/proc/self/maps lines whose permissions end
 * in `s`). Every region a back-end maps is MAP_SHARED, while the JS heap's own
 * growth uses private mappings, so this count is stable enough for leak checks.
 */
export function countMaps(): number {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => /^\S+ \S{3}s /.test(l)).length;
}

/** Mappings whose path mentions `name` (e.g. a memfd's name). */
export function countMapsNamed(name: string): number {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.includes(name)).length;
}
