/**
 * One virtio-blk request: a descriptor chain in, file I/O, a status byte and a
 * used length out (virtio 1.2 section 5.2.6). Used by `VirtioBlk` inside a VMM
 * and directly by a vhost-user back-end, which pops chains itself.
 *
 * Every guest-controlled number is checked before it is used: header length,
 * request type, sector range against the capacity, data length (a multiple of
 * 512), the number of data segments (seg_max) and each segment's size
 * (size_max). File offsets are computed only from checked values, so nothing
 * is ever read or written outside [0, capacity * 512) of the disk.
 */

import { errnoError } from '@rxvmm/errno';
import {
  type DescriptorChain,
  type GuestMemory,
  readSegments,
  type Segment,
  writeSegments,
} from '@rxvmm/virtio-ring';
import type { BlockBackend } from './backend.js';
import {
  BLK_REQUEST_HEADER_SIZE,
  BlkRequestType,
  BlkStatus,
  SECTOR_SIZE,
  VIRTIO_BLK_ID_BYTES,
} from './constants.js';
import { byteAddress, segmentRange } from './segments.js';

/** Defaults advertised in seg_max / size_max when the caller gives none. */
export const DEFAULT_SEG_MAX = 254;
export const DEFAULT_SIZE_MAX = 1 << 20;

export interface BlockRequestHandlerOptions {
  backend: BlockBackend;
  /** Refuse writes even if the backend is writable (VIRTIO_BLK_F_RO). Defaults to `backend.readOnly`. */
  readOnly?: boolean;
  /** Maximum number of data segments per request (seg_max). */
  segMax?: number;
  /** Maximum size in bytes of one data segment (size_max). */
  sizeMax?: number;
  /** GET_ID answer: up to 20 bytes (a string is UTF-8 encoded, NUL-padded). */
  serial?: string | Uint8Array;
}

/** What happened to one request. */
export interface BlockRequestResult {
  /** Request type from the header (-1 when the header was unreadable). */
  type: number;
  sector: bigint;
  /** Status written to the guest, or undefined when the chain had no writable status byte (nothing written). */
  status: number | undefined;
  /** Length for the used ring entry: bytes written into the chain's writable part. */
  usedLen: number;
  /** Data bytes moved to or from the disk. */
  bytes: number;
  /** Why the request failed, when it did. */
  error?: string;
}

export interface BlockRequestStats {
  requests: number;
  reads: number;
  writes: number;
  flushes: number;
  getIds: number;
  bytesRead: number;
  bytesWritten: number;
  ioErrors: number;
  unsupported: number;
  /** Chains without a writable status byte (completed with used length 0). */
  malformed: number;
}

class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class BlockRequestHandler {
  readonly backend: BlockBackend;
  readonly readOnly: boolean;
  readonly segMax: number;
  readonly sizeMax: number;
  /** Capacity in 512-byte sectors (a partial last sector of the file is not exposed). */
  readonly capacity: bigint;
  readonly serial: Uint8Array;
  readonly stats: BlockRequestStats = {
    requests: 0,
    reads: 0,
    writes: 0,
    flushes: 0,
    getIds: 0,
    bytesRead: 0,
    bytesWritten: 0,
    ioErrors: 0,
    unsupported: 0,
    malformed: 0,
  };
  /** Writes in flight: a FLUSH waits for them so it covers every write completed before it. */
  readonly #writes = new Set<Promise<unknown>>();
  /** Every request in flight, for drain(). */
  readonly #inflight = new Set<Promise<BlockRequestResult>>();

  constructor(options: BlockRequestHandlerOptions) {
    this.backend = options.backend;
    this.readOnly = options.readOnly ?? options.backend.readOnly;
    if (!this.readOnly && options.backend.readOnly)
      throw errnoError('EINVAL', 'a read-only backend needs readOnly: true');
    this.segMax = options.segMax ?? DEFAULT_SEG_MAX;
    this.sizeMax = options.sizeMax ?? DEFAULT_SIZE_MAX;
    if (!(Number.isInteger(this.segMax) && this.segMax >= 1 && this.segMax <= 0xffff_ffff)) {
      throw errnoError('EINVAL', `segMax ${this.segMax} must be an integer >= 1`);
    }
    if (!(Number.isInteger(this.sizeMax) && this.sizeMax >= SECTOR_SIZE && this.sizeMax <= 0xffff_ffff)) {
      throw errnoError('EINVAL', `sizeMax ${this.sizeMax} must be an integer >= ${SECTOR_SIZE}`);
    }
    this.capacity = BigInt(Math.floor(options.backend.size / SECTOR_SIZE));
    const serial =
      typeof options.serial === 'string'
        ? new TextEncoder().encode(options.serial)
        : (options.serial ?? new Uint8Array(0));
    this.serial = new Uint8Array(VIRTIO_BLK_ID_BYTES);
    this.serial.set(serial.subarray(0, VIRTIO_BLK_ID_BYTES));
  }

  /**
   * Serves one chain. Resolves once the data and the status byte are in guest
   * memory; the caller then pushes `(chain.head, result.usedLen)` to the used
   * ring. Rejects only when the status byte itself cannot be written (guest
   * memory vanished), which a device treats as fatal (NEEDS_RESET).
   */
  process(mem: GuestMemory, chain: DescriptorChain): Promise<BlockRequestResult> {
    const request = this.#process(mem, chain);
    this.#inflight.add(request);
    const forget = () => this.#inflight.delete(request);
    request.then(forget, forget);
    return request;
  }

  async #process(mem: GuestMemory, chain: DescriptorChain): Promise<BlockRequestResult> {
    this.stats.requests++;
    const statusAddr =
      chain.writableLength > 0 ? byteAddress(chain.writable, chain.writableLength - 1) : undefined;
    if (statusAddr === undefined) {
      this.stats.malformed++;
      return {
        type: -1,
        sector: 0n,
        status: undefined,
        usedLen: 0,
        bytes: 0,
        error: 'no device-writable status byte',
      };
    }
    const result: BlockRequestResult = { type: -1, sector: 0n, status: BlkStatus.OK, usedLen: 1, bytes: 0 };
    try {
      await this.#serve(mem, chain, result);
    } catch (error) {
      result.status = error instanceof RequestError ? error.status : BlkStatus.IOERR;
      result.usedLen = 1;
      result.error = describe(error);
      if (result.status === BlkStatus.UNSUPP) this.stats.unsupported++;
      else this.stats.ioErrors++;
    }
    mem.writeU8(statusAddr, result.status as number);
    return result;
  }

  /** Requests in flight right now. */
  get inflight(): number {
    return this.#inflight.size;
  }

  /** Waits for every request in flight (device reset, shutdown): afterwards nothing touches guest memory. */
  async drain(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
  }

  async #serve(mem: GuestMemory, chain: DescriptorChain, result: BlockRequestResult): Promise<void> {
    if (chain.readableLength < BLK_REQUEST_HEADER_SIZE) {
      throw new RequestError(
        BlkStatus.IOERR,
        `request header is ${chain.readableLength} bytes, needs ${BLK_REQUEST_HEADER_SIZE}`,
      );
    }
    const view = readHeader(mem, chain.readable);
    const type = view.getUint32(0, true);
    const sector = view.getBigUint64(8, true);
    result.type = type;
    result.sector = sector;
    const inLength = chain.writableLength - 1; // bytes before the status byte
    switch (type) {
      case BlkRequestType.IN: {
        this.stats.reads++;
        const data = segmentRange(chain.writable, 0, inLength);
        const position = this.#checkData(data, inLength, sector);
        await this.#transfer(mem, data, inLength, position, false);
        result.bytes = inLength;
        result.usedLen = inLength + 1;
        this.stats.bytesRead += inLength;
        return;
      }
      case BlkRequestType.OUT: {
        this.stats.writes++;
        if (this.readOnly) throw new RequestError(BlkStatus.IOERR, 'write to a read-only device');
        const outLength = chain.readableLength - BLK_REQUEST_HEADER_SIZE;
        const data = segmentRange(chain.readable, BLK_REQUEST_HEADER_SIZE, outLength);
        const position = this.#checkData(data, outLength, sector);
        const write = this.#transfer(mem, data, outLength, position, true);
        this.#writes.add(write);
        try {
          await write;
        } finally {
          this.#writes.delete(write);
        }
        result.bytes = outLength;
        this.stats.bytesWritten += outLength;
        return;
      }
      case BlkRequestType.FLUSH: {
        this.stats.flushes++;
        await Promise.allSettled([...this.#writes]);
        await this.backend.flush();
        return;
      }
      case BlkRequestType.GET_ID: {
        this.stats.getIds++;
        const n = Math.min(VIRTIO_BLK_ID_BYTES, inLength);
        const written = writeSegments(mem, chain.writable, this.serial.subarray(0, n));
        result.usedLen = written + 1;
        return;
      }
      default:
        throw new RequestError(BlkStatus.UNSUPP, `unsupported request type ${type}`);
    }
  }

  /** Checks a data transfer; returns the byte offset in the disk. */
  #checkData(data: readonly Segment[], length: number, sector: bigint): number {
    if (length % SECTOR_SIZE !== 0)
      throw new RequestError(BlkStatus.IOERR, `data length ${length} is not a multiple of 512`);
    if (data.length > this.segMax)
      throw new RequestError(BlkStatus.IOERR, `${data.length} data segments exceed seg_max ${this.segMax}`);
    for (const seg of data) {
      if (seg.len > this.sizeMax)
        throw new RequestError(
          BlkStatus.IOERR,
          `segment of ${seg.len} bytes exceeds size_max ${this.sizeMax}`,
        );
    }
    // Division, not a `>>>` shift: a chain may carry 4 GiB or more and `>>>` keeps only 32 bits.
    const sectors = BigInt(length / SECTOR_SIZE);
    if (sector > this.capacity || sectors > this.capacity - sector) {
      throw new RequestError(
        BlkStatus.IOERR,
        `sectors [${sector}, ${sector + sectors}) are beyond the capacity of ${this.capacity} sectors`,
      );
    }
    return Number(sector) * SECTOR_SIZE;
  }

  /** Moves `length` bytes between the disk at `position` and guest memory, in place where it can. */
  async #transfer(
    mem: GuestMemory,
    data: readonly Segment[],
    length: number,
    position: number,
    toDisk: boolean,
  ): Promise<void> {
    if (length === 0) return;
    const buffers: Uint8Array[] = [];
    const bounces: { addr: bigint; buf: Uint8Array }[] = [];
    for (const seg of data) {
      const view = sliceOrUndefined(mem, seg);
      if (view) {
        buffers.push(view);
        continue;
      }
      // Spans two memory regions: go through a bounce buffer.
      const buf = new Uint8Array(seg.len);
      if (toDisk) mem.read(seg.addr, buf);
      else bounces.push({ addr: seg.addr, buf });
      buffers.push(buf);
    }
    const moved = toDisk
      ? await this.backend.writev(buffers, position)
      : await this.backend.readv(buffers, position);
    if (moved !== length)
      throw new RequestError(
        BlkStatus.IOERR,
        `short ${toDisk ? 'write' : 'read'}: ${moved} of ${length} bytes`,
      );
    for (const b of bounces) mem.write(b.addr, b.buf);
  }
}

/** The 16-byte header: read in place when its first descriptor holds all of it (the common case). */
function readHeader(mem: GuestMemory, readable: readonly Segment[]): DataView {
  const first = readable[0];
  if (first && first.len >= BLK_REQUEST_HEADER_SIZE) {
    const bytes = sliceOrUndefined(mem, { addr: first.addr, len: BLK_REQUEST_HEADER_SIZE });
    if (bytes) return new DataView(bytes.buffer, bytes.byteOffset, BLK_REQUEST_HEADER_SIZE);
  }
  const header = new Uint8Array(BLK_REQUEST_HEADER_SIZE);
  readSegments(mem, readable, header);
  return new DataView(header.buffer);
}

function sliceOrUndefined(mem: GuestMemory, seg: Segment): Uint8Array | undefined {
  try {
    return mem.slice(seg.addr, seg.len);
  } catch {
    return undefined;
  }
}
