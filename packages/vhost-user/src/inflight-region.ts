/**
 * The shared memory of inflight I/O tracking (vhost-user.rst "Inflight I/O
 * tracking", VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD): the back-end creates it
 * (GET_INFLIGHT_FD), the frontend keeps it for as long as the device lives
 * and hands it back to every back-end that connects (SET_INFLIGHT_FD), so a
 * back-end that died with requests in flight finds them there.
 *
 * One queue region per virtqueue, each `inflightQueueBytes(queueSize)` bytes:
 * room for the packed layout (the larger one), because the ring format is
 * negotiated after the region is made. The layouts themselves are in
 * split-inflight.ts and packed-inflight.ts.
 */
import { fstatSync } from 'node:fs';
import { errnoError } from '@rxvmm/errno';
import {
  addSeals,
  close,
  detachBuffer,
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  ftruncate,
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
import { requireShrinkSeal } from './seals.js';

/** The `version` of a queue region in use; 0 is a region nobody has written yet. */
export const INFLIGHT_VERSION = 1;
/** QueueRegionSplit header and DescStateSplit entries. */
export const SPLIT_HEADER_BYTES = 16;
export const SPLIT_DESC_BYTES = 16;
/** QueueRegionPacked header (29 bytes, padded to the 8-byte alignment of its entries) and DescStatePacked. */
export const PACKED_HEADER_BYTES = 32;
export const PACKED_DESC_BYTES = 32;
/** Largest queue a region is made for (the split and packed queue-size limit). */
export const MAX_INFLIGHT_QUEUE_SIZE = 32768;

/** Bytes of one queue's region for queues of up to `queueSize` entries (64-byte aligned). */
export function inflightQueueBytes(queueSize: number): number {
  return Math.ceil((PACKED_HEADER_BYTES + PACKED_DESC_BYTES * queueSize) / 64) * 64;
}

/** The GET/SET_INFLIGHT_FD payload (VhostUserInflight). */
export interface InflightDescription {
  mmapSize: bigint;
  mmapOffset: bigint;
  numQueues: number;
  queueSize: number;
}

/** Typed views of one queue's region, index 0 at its first byte. */
export interface RegionViews {
  u8: Uint8Array;
  u16: Uint16Array;
  u32: Uint32Array;
}

/** Checks the queue count and size a frontend asks a region for. */
export function checkInflightShape(numQueues: number, queueSize: number, maxQueues: number): void {
  if (numQueues < 1 || numQueues > maxQueues)
    throw errnoError('EINVAL', `inflight region for ${numQueues} queues (the device has ${maxQueues})`);
  if (queueSize < 1 || queueSize > MAX_INFLIGHT_QUEUE_SIZE)
    throw errnoError('EINVAL', `inflight region for queues of ${queueSize} entries`);
}

/**
 * GET_INFLIGHT_FD: a new zero-filled memfd of `numQueues` queue regions,
 * sealed against shrinking and growing (so a frontend cannot turn our mapping
 * of it into SIGBUS) and against further sealing. Returns the fd (the caller
 * sends it and closes its copy) and its size.
 */
export function createInflightFd(numQueues: number, queueSize: number): { fd: number; mmapSize: number } {
  const mmapSize = numQueues * inflightQueueBytes(queueSize);
  const fd = memfdCreate('rxvmm-vhost-inflight', MFD_CLOEXEC | MFD_ALLOW_SEALING);
  try {
    ftruncate(fd, mmapSize);
    addSeals(fd, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  } catch (error) {
    close(fd);
    throw error;
  }
  return { fd, mmapSize };
}

/** A mapped inflight region (SET_INFLIGHT_FD), or one over plain memory (tests). */
export class InflightRegion {
  private released = false;

  private constructor(
    private readonly buffer: ArrayBuffer,
    /** Byte offset of queue 0's region in `buffer`. */
    private readonly offset: number,
    readonly numQueues: number,
    readonly queueSize: number,
    private readonly unmap: (() => void) | null,
  ) {}

  /**
   * Maps what SET_INFLIGHT_FD hands over. Takes ownership of `fd` (closed
   * whatever happens). The region must hold `numQueues` queue regions of this
   * back-end's layout and lie inside the file (else a later access would be
   * SIGBUS); `requireSealed` also wants F_SEAL_SHRINK on it.
   */
  static map(
    fd: number,
    d: InflightDescription,
    maxQueues: number,
    options: { requireSealed?: boolean } = {},
  ): InflightRegion {
    try {
      checkInflightShape(d.numQueues, d.queueSize, maxQueues);
      const need = BigInt(d.numQueues * inflightQueueBytes(d.queueSize));
      if (d.mmapSize < need)
        throw errnoError(
          'EINVAL',
          `inflight region of ${d.mmapSize} bytes; ${d.numQueues} queues of ${d.queueSize} entries need ${need}`,
        );
      if (d.mmapOffset % 64n !== 0n || d.mmapOffset + d.mmapSize > 1n << 40n)
        throw errnoError(
          'EINVAL',
          `inflight region at file offset ${d.mmapOffset}: not 64-byte aligned, or absurdly large`,
        );
      if (options.requireSealed) requireShrinkSeal(fd, 'the inflight region');
      const st = fstatSync(fd);
      const end = d.mmapOffset + d.mmapSize;
      if (!st.isFile() || BigInt(st.size) < end)
        throw errnoError(
          'EINVAL',
          `inflight region [${d.mmapOffset}, +${d.mmapSize}) is past the end of its fd`,
        );
      const length = Number(end);
      const address = mmap(length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0n);
      const buffer = mappingBuffer(address, length);
      return new InflightRegion(buffer, Number(d.mmapOffset), d.numQueues, d.queueSize, () => {
        detachBuffer(buffer);
        munmap(address, length);
      });
    } finally {
      close(fd);
    }
  }

  /** A region over `buffer` from `offset` (tests; a region the caller owns). */
  static over(buffer: ArrayBuffer, numQueues: number, queueSize: number, offset = 0): InflightRegion {
    if (offset % 64 !== 0 || offset + numQueues * inflightQueueBytes(queueSize) > buffer.byteLength)
      throw new RangeError('the buffer does not hold the region');
    return new InflightRegion(buffer, offset, numQueues, queueSize, null);
  }

  /** Typed views of queue `index`'s region. */
  queueViews(index: number): RegionViews {
    if (this.released) throw errnoError('EBADF', 'inflight region released');
    if (!(index >= 0 && index < this.numQueues))
      throw new RangeError(`queue ${index} has no inflight region (${this.numQueues} queues)`);
    const bytes = inflightQueueBytes(this.queueSize);
    const at = this.offset + index * bytes;
    return {
      u8: new Uint8Array(this.buffer, at, bytes),
      u16: new Uint16Array(this.buffer, at, bytes / 2),
      u32: new Uint32Array(this.buffer, at, bytes / 4),
    };
  }

  /** Unmaps the region. Every queue using it must have stopped first. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.unmap?.();
  }
}
