/**
 * Where a virtio-blk device's bytes live. `FileBackend` is a regular file or
 * block device opened with fs.promises; reads and writes take scatter/gather
 * lists of Uint8Array views, so guest memory is read/written in place.
 *
 * The FileHandle owns the descriptor (open, stat, datasync, close); the
 * transfers themselves go through libuv's callback `fs.readv`/`fs.writev` on
 * its fd, which costs about a third less per request than
 * `FileHandle.readv` (no FileHandle ref-counting and promise plumbing inside
 * Node) and is just as asynchronous (the thread pool does the preadv).
 */
import { readv as fsReadv, writev as fsWritev, readvSync, writevSync } from 'node:fs';
import { type FileHandle, open, readFile } from 'node:fs/promises';
import { errnoError } from '@rxvmm/errno';
import { advanceBuffers, blockDeviceBytes, blockDeviceSizePath } from './iovec.js';

/** Where a block device's bytes live: positioned vector reads and writes, flush, close (`FileBackend` is one). */
export interface BlockBackend {
  /** Size in bytes (fixed for the backend's lifetime). */
  readonly size: number;
  readonly readOnly: boolean;
  /** Fills `buffers` in order from byte `position`; resolves the byte count (short only at end of file). */
  readv(buffers: Uint8Array[], position: number): Promise<number>;
  /** Writes `buffers` in order at byte `position`; resolves the byte count. */
  writev(buffers: Uint8Array[], position: number): Promise<number>;
  /** Makes completed writes durable. */
  flush(): Promise<void>;
  /** Waits for transfers in flight, then releases the storage. */
  close(): Promise<void>;
}

/**
 * A backend whose transfers run to completion on the calling thread (preadv, pwritev, fdatasync
 * that return when done): `BlockRequestHandler.processSync` then serves a request in one call,
 * without a promise, and a device hosting it hands its serving loop a number, not a promise.
 * For a thread or process that serves nothing but this disk (a slow disk stalls its loop).
 */
export interface SyncBlockBackend extends BlockBackend {
  /** Fills `buffers` in order from byte `position`; the byte count (short only at end of file). */
  readvSync(buffers: Uint8Array[], position: number): number;
  /** Writes `buffers` in order at byte `position`; the byte count. */
  writevSync(buffers: Uint8Array[], position: number): number;
  /** Makes completed writes durable. */
  flushSync(): void;
}

/** True when `backend` offers synchronous transfers (all three of `SyncBlockBackend`'s methods). */
export function isSyncBlockBackend(backend: BlockBackend): backend is SyncBlockBackend {
  const b = backend as Partial<SyncBlockBackend>;
  return (
    typeof b.readvSync === 'function' &&
    typeof b.writevSync === 'function' &&
    typeof b.flushSync === 'function'
  );
}

/**
 * A `SyncBlockBackend` that also moves bytes straight between the disk and (offset, length) ranges
 * of one byte buffer, a guest-memory region's (`@rxvmm/sys`'s `preadvRanges`/`pwritevRanges` do):
 * `BlockRequestHandler` then moves a request whose data lies in one region in one call, without
 * a view per piece. `ranges` holds `count` pairs (offset in `memory`, length), at most
 * {@link MAX_RANGES}, each inside `memory`; it is the handler's scratch, which the backend may
 * change (to go on after a short transfer).
 */
export interface SyncRangesBlockBackend extends SyncBlockBackend {
  /** Fills the ranges of `memory` in order from byte `position`; the byte count (short only at end of file). */
  readRangesSync(memory: Uint8Array, ranges: Float64Array, count: number, position: number): number;
  /** Writes the ranges of `memory` in order at byte `position`; the byte count. */
  writeRangesSync(memory: Uint8Array, ranges: Float64Array, count: number, position: number): number;
}

/** The most ranges `BlockRequestHandler` hands one `readRangesSync`/`writeRangesSync` call (Linux's UIO_MAXIOV). */
export const MAX_RANGES = 1024;

/** True when `backend` is a `SyncBlockBackend` that takes ranges of guest memory (`SyncRangesBlockBackend`). */
export function isSyncRangesBlockBackend(backend: BlockBackend): backend is SyncRangesBlockBackend {
  const b = backend as Partial<SyncRangesBlockBackend>;
  return (
    isSyncBlockBackend(backend) &&
    typeof b.readRangesSync === 'function' &&
    typeof b.writeRangesSync === 'function'
  );
}

/** Options of `FileBackend.open()`. */
export interface FileBackendOptions {
  readOnly?: boolean;
  /**
   * 'async' (default): transfers on libuv's thread pool, the event loop never waits for the disk.
   * 'sync': preadv/pwritev on the calling thread. A page-cache hit then costs about 1 µs instead
   * of a 10-20 µs thread-pool round trip, but a slow disk stalls the loop: for a thread or process
   * that serves nothing but this disk.
   */
  io?: 'async' | 'sync';
}

/** stat reports size 0 for a block device; sysfs has its size in 512-byte sectors. */
async function blockDeviceSize(rdev: number): Promise<number> {
  return blockDeviceBytes(await readFile(blockDeviceSizePath(rdev), 'utf8'));
}

/** Total length of a buffer list. */
function total(buffers: readonly Uint8Array[]): number {
  let n = 0;
  for (const b of buffers) n += b.byteLength;
  return n;
}

/** A disk image file (or block device) as a `BlockBackend`: opened `r`/`r+`, never created, grown or truncated; transfers with libuv's `readv`/`writev` (or the synchronous calls with `io: 'sync'`). */
export class FileBackend implements BlockBackend {
  readonly path: string;
  readonly size: number;
  readonly readOnly: boolean;
  readonly io: 'async' | 'sync';
  #fh: FileHandle | undefined;
  /** Transfers in flight: close() waits for them so their fd is never closed (and reused) under them. */
  readonly #inflight = new Set<Promise<number>>();

  private constructor(path: string, fh: FileHandle, size: number, readOnly: boolean, io: 'async' | 'sync') {
    this.path = path;
    this.io = io;
    this.#fh = fh;
    this.size = size;
    this.readOnly = readOnly;
  }

  /** Opens an existing file (never creates one): 'r' when read-only, else 'r+'. */
  static async open(path: string, options: FileBackendOptions = {}): Promise<FileBackend> {
    const readOnly = options.readOnly ?? false;
    const fh = await open(path, readOnly ? 'r' : 'r+');
    try {
      const st = await fh.stat();
      if (!st.isFile() && !st.isBlockDevice())
        throw errnoError('EINVAL', `${path} is neither a regular file nor a block device`);
      let size = st.size;
      if (st.isBlockDevice()) size = await blockDeviceSize(st.rdev);
      return new FileBackend(path, fh, size, readOnly, options.io ?? 'async');
    } catch (error) {
      await fh.close();
      throw error;
    }
  }

  #handle(): FileHandle {
    if (!this.#fh) throw errnoError('EBADF', `${this.path} is closed`);
    return this.#fh;
  }

  readv(buffers: Uint8Array[], position: number): Promise<number> {
    return this.#track(this.#readv(buffers, position));
  }

  writev(buffers: Uint8Array[], position: number): Promise<number> {
    return this.#track(this.#writev(buffers, position));
  }

  #track(op: Promise<number>): Promise<number> {
    this.#inflight.add(op);
    const forget = () => this.#inflight.delete(op);
    op.then(forget, forget);
    return op;
  }

  async #readv(buffers: Uint8Array[], position: number): Promise<number> {
    const fh = this.#handle();
    const want = total(buffers);
    let done = 0;
    let rest = buffers.filter((b) => b.byteLength > 0);
    while (done < want) {
      const bytesRead =
        this.io === 'sync'
          ? readvSync(fh.fd, rest, position + done)
          : await new Promise<number>((resolve, reject) =>
              fsReadv(fh.fd, rest, position + done, (error, n) => (error ? reject(error) : resolve(n))),
            );
      if (bytesRead === 0) break; // end of file
      done += bytesRead;
      rest = advanceBuffers(rest, bytesRead);
    }
    return done;
  }

  async #writev(buffers: Uint8Array[], position: number): Promise<number> {
    if (this.readOnly) throw errnoError('EPERM', `${this.path} is open read-only`);
    const fh = this.#handle();
    const want = total(buffers);
    let done = 0;
    let rest = buffers.filter((b) => b.byteLength > 0);
    while (done < want) {
      const bytesWritten =
        this.io === 'sync'
          ? writevSync(fh.fd, rest, position + done)
          : await new Promise<number>((resolve, reject) =>
              fsWritev(fh.fd, rest, position + done, (error, n) => (error ? reject(error) : resolve(n))),
            );
      if (bytesWritten === 0) throw errnoError('EIO', `${this.path}: write made no progress`);
      done += bytesWritten;
      rest = advanceBuffers(rest, bytesWritten);
    }
    return done;
  }

  async flush(): Promise<void> {
    if (this.readOnly) return;
    await this.#handle().datasync();
  }

  /** Waits for transfers in flight, then closes the file. */
  async close(): Promise<void> {
    const fh = this.#fh;
    this.#fh = undefined; // new transfers fail with EBADF from here on
    await Promise.allSettled([...this.#inflight]);
    await fh?.close();
  }
}
