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
import { ChainBuffer, type DescriptorChain, type GuestMemory } from '@rxvmm/virtio-ring';
import {
  type BlockBackend,
  isSyncBlockBackend,
  isSyncRangesBlockBackend,
  MAX_RANGES,
  type SyncBlockBackend,
  type SyncRangesBlockBackend,
} from './backend.js';
import {
  BLK_REQUEST_HEADER_SIZE,
  BlkRequestType,
  BlkStatus,
  SECTOR_SIZE,
  VIRTIO_BLK_ID_BYTES,
} from './constants.js';

/** Defaults advertised in seg_max / size_max when the caller gives none. */
export const DEFAULT_SEG_MAX = 254;
/** The size_max advertised when the caller gives none: 1 MiB per segment. */
export const DEFAULT_SIZE_MAX = 1 << 20;

/** Options of `new BlockRequestHandler(options)`. */
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

/** Counters of a `BlockRequestHandler`, by outcome. */
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

/**
 * What a parsed request asks the backend for (built before any I/O, from checked values only):
 * bytes [start, start+length) of the chain's readable stream (a write, `toDisk`) or writable
 * stream (a read) moved at disk byte `position`.
 */
type BackendOp =
  | { kind: 'transfer'; toDisk: boolean; start: number; length: number; position: number }
  | { kind: 'flush' };

type TransferOp = BackendOp & { kind: 'transfer' };

/** A transfer's buffers: views of guest memory in place, and bounce buffers for pieces spanning two regions. */
interface TransferViews {
  buffers: Uint8Array[];
  /** Bounce buffers to copy into guest memory after a read (pieces spanning two regions). */
  bounces: { addr: bigint; buf: Uint8Array }[] | null;
}

const FLUSH: BackendOp = { kind: 'flush' };
const TWO_32 = 2 ** 32;

/** One descriptor chain in, one virtio-blk request served: header parsed and checked, data moved between guest RAM and the backend, status byte written; `process()` resolves the used length. No rings, no transport. */
export class BlockRequestHandler {
  readonly backend: BlockBackend;
  readonly readOnly: boolean;
  readonly segMax: number;
  readonly sizeMax: number;
  /** Capacity in 512-byte sectors (a partial last sector of the file is not exposed). */
  readonly capacity: bigint;
  readonly serial: Uint8Array;
  /**
   * The backend's transfers are synchronous (`SyncBlockBackend`): `processSync` and
   * `processBuffer` serve a request in one call, and `process` answers with an already settled
   * promise.
   */
  readonly sync: boolean;
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
  readonly #syncBackend: SyncBlockBackend | null;
  /** The backend takes (offset, length) ranges of one guest-memory region per call, or null. */
  readonly #rangesBackend: SyncRangesBlockBackend | null;
  /** `capacity` as a number (exact: a disk has fewer than 2^53 bytes). */
  readonly #sectors: number;
  /** Writes in flight: a FLUSH waits for them so it covers every write completed before it. */
  readonly #writes = new Set<Promise<unknown>>();
  /** Every request in flight, for drain(). */
  readonly #inflight = new Set<Promise<BlockRequestResult>>();
  /** A header that does not lie in one piece of guest memory is gathered here. */
  readonly #header = new DataView(new ArrayBuffer(BLK_REQUEST_HEADER_SIZE));
  /** A `DescriptorChain` as numbers, so every request is parsed by the same code (`processBuffer`'s). */
  readonly #scratch = new ChainBuffer();
  /** (offset, length) pairs of a ranges transfer, reused from request to request. */
  #ranges = new Float64Array(2 * 32);
  #rangeCount = 0;

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
    this.#sectors = Math.floor(options.backend.size / SECTOR_SIZE);
    this.capacity = BigInt(this.#sectors);
    this.#syncBackend = isSyncBlockBackend(options.backend) ? options.backend : null;
    this.#rangesBackend = isSyncRangesBlockBackend(options.backend) ? options.backend : null;
    this.sync = this.#syncBackend !== null;
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
    if (this.#syncBackend !== null) {
      try {
        return Promise.resolve(this.processSync(mem, chain));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const request = this.#process(mem, this.#numeric(chain));
    this.#inflight.add(request);
    const forget = () => this.#inflight.delete(request);
    request.then(forget, forget);
    return request;
  }

  /**
   * Serves one chain at once, for a backend with synchronous transfers (`sync`): when it returns,
   * the data and the status byte are in guest memory and nothing of the request is in flight.
   * Throws only when the status byte itself cannot be written (as `process` rejects); `EINVAL`
   * when the backend is not a `SyncBlockBackend`.
   */
  processSync(mem: GuestMemory, chain: DescriptorChain): BlockRequestResult {
    return this.processBuffer(mem, this.#numeric(chain));
  }

  /**
   * `processSync` for a chain popped into a `ChainBuffer` (what a serving loop's `handleBuffer`
   * gets): no object per segment, and with a `SyncRangesBlockBackend` the data of a request in
   * one guest-memory region moves in one call, without a view per piece. The buffer is only read,
   * during the call.
   */
  processBuffer(mem: GuestMemory, chain: ChainBuffer): BlockRequestResult {
    const backend = this.#syncBackend;
    if (backend === null)
      throw errnoError('EINVAL', 'processSync needs a backend with synchronous transfers');
    this.stats.requests++;
    const statusAddr = lastWritableByte(chain);
    if (statusAddr < 0) return this.#malformed();
    const result: BlockRequestResult = { type: -1, sector: 0n, status: BlkStatus.OK, usedLen: 1, bytes: 0 };
    try {
      const op = this.#parse(mem, chain, result);
      if (op?.kind === 'transfer') this.#transferSync(backend, mem, chain, op, result);
      else if (op?.kind === 'flush') backend.flushSync();
    } catch (error) {
      this.#failed(result, error);
    }
    writeStatus(mem, statusAddr, result.status as number);
    return result;
  }

  /** Parses before its first await: `chain` may be the reused scratch buffer. */
  async #process(mem: GuestMemory, chain: ChainBuffer): Promise<BlockRequestResult> {
    this.stats.requests++;
    const statusAddr = lastWritableByte(chain);
    if (statusAddr < 0) return this.#malformed();
    const result: BlockRequestResult = { type: -1, sector: 0n, status: BlkStatus.OK, usedLen: 1, bytes: 0 };
    try {
      const op = this.#parse(mem, chain, result);
      if (op?.kind === 'transfer') {
        const views = transferViews(mem, chain, op);
        if (op.toDisk) {
          const write = this.backend.writev(views.buffers, op.position);
          this.#writes.add(write);
          try {
            this.#transferred(mem, op, await write, views.bounces, result);
          } finally {
            this.#writes.delete(write);
          }
        } else
          this.#transferred(
            mem,
            op,
            await this.backend.readv(views.buffers, op.position),
            views.bounces,
            result,
          );
      } else if (op?.kind === 'flush') {
        await Promise.allSettled([...this.#writes]);
        await this.backend.flush();
      }
    } catch (error) {
      this.#failed(result, error);
    }
    writeStatus(mem, statusAddr, result.status as number);
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

  /** A `DescriptorChain` copied into the scratch buffer (segments lie in guest memory: exact numbers). */
  #numeric(chain: DescriptorChain): ChainBuffer {
    return this.#scratch.setFrom(chain);
  }

  #malformed(): BlockRequestResult {
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

  #failed(result: BlockRequestResult, error: unknown): void {
    result.status = error instanceof RequestError ? error.status : BlkStatus.IOERR;
    result.usedLen = 1;
    result.error = describe(error);
    if (result.status === BlkStatus.UNSUPP) this.stats.unsupported++;
    else this.stats.ioErrors++;
  }

  /**
   * Parses and checks a request (a chain with a status byte): what the backend must do, or null
   * when the request is already done (GET_ID) or has nothing to move. Throws RequestError.
   */
  #parse(mem: GuestMemory, chain: ChainBuffer, result: BlockRequestResult): BackendOp | null {
    if (chain.readableLength < BLK_REQUEST_HEADER_SIZE) {
      throw new RequestError(
        BlkStatus.IOERR,
        `request header is ${chain.readableLength} bytes, needs ${BLK_REQUEST_HEADER_SIZE}`,
      );
    }
    const header = this.#readHeader(mem, chain);
    const at = this.#headerAt;
    const type = header.getUint32(at, true);
    const sectorLo = header.getUint32(at + 8, true);
    const sectorHi = header.getUint32(at + 12, true);
    // One bigint for the result; the checks below use numbers (a sector past 2^53 exceeds any capacity).
    const sector = sectorHi * TWO_32 + sectorLo;
    result.type = type;
    result.sector = sectorHi < 0x20_0000 ? BigInt(sector) : (BigInt(sectorHi) << 32n) | BigInt(sectorLo);
    const inLength = chain.writableLength - 1; // bytes before the status byte
    switch (type) {
      case BlkRequestType.IN: {
        this.stats.reads++;
        const lens = chain.writableLen;
        const position = this.#checkData(lens, chain.writableCount, 0, inLength, sector, result.sector);
        if (inLength === 0) return null;
        return { kind: 'transfer', toDisk: false, start: 0, length: inLength, position };
      }
      case BlkRequestType.OUT: {
        this.stats.writes++;
        if (this.readOnly) throw new RequestError(BlkStatus.IOERR, 'write to a read-only device');
        const outLength = chain.readableLength - BLK_REQUEST_HEADER_SIZE;
        const start = BLK_REQUEST_HEADER_SIZE;
        const position = this.#checkData(
          chain.readableLen,
          chain.readableCount,
          start,
          outLength,
          sector,
          result.sector,
        );
        if (outLength === 0) return null;
        return { kind: 'transfer', toDisk: true, start, length: outLength, position };
      }
      case BlkRequestType.FLUSH: {
        this.stats.flushes++;
        return FLUSH;
      }
      case BlkRequestType.GET_ID: {
        this.stats.getIds++;
        const n = Math.min(VIRTIO_BLK_ID_BYTES, inLength);
        const written = chain.write(mem, this.serial.subarray(0, n));
        result.usedLen = written + 1;
        return null;
      }
      default:
        throw new RequestError(BlkStatus.UNSUPP, `unsupported request type ${type}`);
    }
  }

  /**
   * A synchronous transfer: with a ranges backend and every piece in one memory region, one
   * call with (offset, length) pairs; otherwise views of guest memory (and bounce buffers).
   */
  #transferSync(
    backend: SyncBlockBackend,
    mem: GuestMemory,
    chain: ChainBuffer,
    op: TransferOp,
    result: BlockRequestResult,
  ): void {
    const ranged = this.#rangesBackend;
    if (ranged !== null) {
      const region = this.#fillRanges(mem, chain, op);
      if (region !== null) {
        const moved = op.toDisk
          ? ranged.writeRangesSync(region, this.#ranges, this.#rangeCount, op.position)
          : ranged.readRangesSync(region, this.#ranges, this.#rangeCount, op.position);
        this.#transferred(mem, op, moved, null, result);
        return;
      }
    }
    const views = transferViews(mem, chain, op);
    const moved = op.toDisk
      ? backend.writevSync(views.buffers, op.position)
      : backend.readvSync(views.buffers, op.position);
    this.#transferred(mem, op, moved, views.bounces, result);
  }

  /**
   * Fills `#ranges` with the transfer's pieces as (offset, length) pairs of one region's bytes;
   * that region's bytes, or null when the pieces are not all in one region (or are more than
   * one call takes).
   */
  #fillRanges(mem: GuestMemory, chain: ChainBuffer, op: TransferOp): Uint8Array | null {
    const toDisk = op.toDisk;
    const addrs = toDisk ? chain.readableAddr : chain.writableAddr;
    const lens = toDisk ? chain.readableLen : chain.writableLen;
    const count = toDisk ? chain.readableCount : chain.writableCount;
    let ranges = this.#ranges;
    let region = -1;
    let start = 0;
    let n = 0;
    let skip = op.start;
    let want = op.length;
    for (let i = 0; i < count && want > 0; i++) {
      const len = lens[i]!;
      if (skip >= len) {
        skip -= len;
        continue;
      }
      const piece = Math.min(len - skip, want);
      const a = addrs[i]! + skip;
      const ri = mem.regionOf(a, piece);
      if (ri < 0 || (region >= 0 && ri !== region)) return null;
      if (region < 0) {
        region = ri;
        start = mem.regions[ri]!.start;
      }
      if (2 * n === ranges.length) {
        if (n === MAX_RANGES) return null;
        const grown = new Float64Array(Math.min(2 * ranges.length, 2 * MAX_RANGES));
        grown.set(ranges);
        this.#ranges = ranges = grown;
      }
      ranges[2 * n] = a - start;
      ranges[2 * n + 1] = piece;
      n++;
      want -= piece;
      skip = 0;
    }
    if (region < 0) return null;
    this.#rangeCount = n;
    return mem.regions[region]!.bytes;
  }

  /** A transfer completed: `moved` bytes of `op`. Short is an error; bounce buffers go to guest memory. */
  #transferred(
    mem: GuestMemory,
    op: TransferOp,
    moved: number,
    bounces: TransferViews['bounces'],
    result: BlockRequestResult,
  ): void {
    const length = op.length;
    if (moved !== length)
      throw new RequestError(
        BlkStatus.IOERR,
        `short ${op.toDisk ? 'write' : 'read'}: ${moved} of ${length} bytes`,
      );
    if (bounces !== null) for (const b of bounces) mem.write(b.addr, b.buf);
    result.bytes = length;
    if (op.toDisk) this.stats.bytesWritten += length;
    else {
      result.usedLen = length + 1;
      this.stats.bytesRead += length;
    }
  }

  /** Offset of the header in the view `#readHeader` returned. */
  #headerAt = 0;

  /** The 16-byte header: read in place when its first descriptor holds all of it (the common case). */
  #readHeader(mem: GuestMemory, chain: ChainBuffer): DataView {
    if (chain.readableLen[0]! >= BLK_REQUEST_HEADER_SIZE) {
      const a = chain.readableAddr[0]!;
      const ri = mem.regionOf(a, BLK_REQUEST_HEADER_SIZE);
      if (ri >= 0) {
        const r = mem.regions[ri]!;
        this.#headerAt = r.hostOffset + (a - r.start);
        return r.view;
      }
    }
    chain.read(mem, new Uint8Array(this.#header.buffer));
    this.#headerAt = 0;
    return this.#header;
  }

  /**
   * Checks a data transfer of bytes [start, start+length) of a segment stream (length, seg_max,
   * size_max, capacity); returns the byte offset in the disk.
   */
  #checkData(
    lens: Uint32Array,
    count: number,
    start: number,
    length: number,
    sector: number,
    exact: bigint,
  ): number {
    if (length % SECTOR_SIZE !== 0)
      throw new RequestError(BlkStatus.IOERR, `data length ${length} is not a multiple of 512`);
    // The pieces the transfer takes, counted without materialising them.
    let pieces = 0;
    let tooLong = 0; // the first piece longer than size_max
    let skip = start;
    let want = length;
    for (let i = 0; i < count && want > 0; i++) {
      const len = lens[i]!;
      if (skip >= len) {
        skip -= len;
        continue;
      }
      const n = Math.min(len - skip, want);
      pieces++;
      if (n > this.sizeMax && tooLong === 0) tooLong = n;
      want -= n;
      skip = 0;
    }
    if (pieces > this.segMax)
      throw new RequestError(BlkStatus.IOERR, `${pieces} data segments exceed seg_max ${this.segMax}`);
    if (tooLong > 0)
      throw new RequestError(BlkStatus.IOERR, `segment of ${tooLong} bytes exceeds size_max ${this.sizeMax}`);
    // Division, not a `>>>` shift: a chain may carry 4 GiB or more and `>>>` keeps only 32 bits.
    const sectors = length / SECTOR_SIZE;
    if (sector > this.#sectors || sectors > this.#sectors - sector) {
      throw new RequestError(
        BlkStatus.IOERR,
        `sectors [${exact}, ${exact + BigInt(sectors)}) are beyond the capacity of ${this.capacity} sectors`,
      );
    }
    return sector * SECTOR_SIZE;
  }
}

/**
 * The buffers moving a transfer's bytes: views of guest memory in place (zero copy), or a bounce
 * buffer for a piece that spans two memory regions.
 */
function transferViews(mem: GuestMemory, chain: ChainBuffer, op: TransferOp): TransferViews {
  const toDisk = op.toDisk;
  const addrs = toDisk ? chain.readableAddr : chain.writableAddr;
  const lens = toDisk ? chain.readableLen : chain.writableLen;
  const count = toDisk ? chain.readableCount : chain.writableCount;
  const buffers: Uint8Array[] = [];
  let bounces: TransferViews['bounces'] = null;
  let skip = op.start;
  let want = op.length;
  for (let i = 0; i < count && want > 0; i++) {
    const len = lens[i]!;
    if (skip >= len) {
      skip -= len;
      continue;
    }
    const n = Math.min(len - skip, want);
    // Segments lie in guest memory (the ring checked them), so below 2^53: exact numbers.
    const a = addrs[i]! + skip;
    const ri = mem.regionOf(a, n);
    if (ri >= 0) {
      const r = mem.regions[ri]!;
      // A view made directly: subarray() looks the species constructor up first, twice the cost.
      buffers.push(new Uint8Array(r.bytes.buffer, r.bytes.byteOffset + (a - r.start), n));
    } else {
      // Spans two memory regions (or is not guest memory at all: mem.read/write throw).
      const addr = BigInt(a);
      const buf = new Uint8Array(n);
      if (toDisk) mem.read(addr, buf);
      else {
        bounces ??= [];
        bounces.push({ addr, buf });
      }
      buffers.push(buf);
    }
    want -= n;
    skip = 0;
  }
  return { buffers, bounces };
}

/** Guest address of the last writable byte (the status byte), or -1 when there is none. */
function lastWritableByte(chain: ChainBuffer): number {
  if (chain.writableLength === 0) return -1;
  const lens = chain.writableLen;
  // Trailing empty descriptors hold no byte: the status byte ends the last non-empty one.
  for (let i = chain.writableCount - 1; i >= 0; i--) {
    const len = lens[i]!;
    if (len > 0) return chain.writableAddr[i]! + len - 1;
  }
  return -1;
}

/** Writes the status byte (EFAULT, via GuestMemory, when it is not in guest memory). */
function writeStatus(mem: GuestMemory, addr: number, status: number): void {
  const ri = mem.regionOf(addr, 1);
  if (ri >= 0) {
    const r = mem.regions[ri]!;
    r.bytes[addr - r.start] = status;
  } else mem.writeU8(BigInt(addr), status);
}
