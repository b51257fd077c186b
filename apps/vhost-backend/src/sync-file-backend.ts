/**
 * A BlockBackend doing preadv/pwritev synchronously on the event loop thread,
 * as QEMU's contrib/vhost-user-blk does. It is a `SyncBlockBackend`, so
 * virtio-blk serves each request in one call, without a promise. Why: on this class of machine a libuv
 * threadpool round trip (what fs.promises costs per request) is tens of
 * microseconds, more than a page-cache hit itself, and a back-end process
 * serves exactly one device, so there is nothing else for the loop to do while
 * the syscall runs. It is also a `SyncRangesBlockBackend`: a request whose data lies in one
 * guest-memory region is one `preadvRanges`/`pwritevRanges` call of `@rxvmm/sys` with (offset,
 * length) pairs, no view per piece and no V8 API read of each one in Node's fs binding. `--io async` in the CLI selects virtio-blk's FileBackend
 * instead (better when the disk is slow and several queues are busy).
 */
import { closeSync, fdatasyncSync, fstatSync, openSync, readFileSync, readvSync, writevSync } from 'node:fs';
import { preadvRanges, pwritevRanges } from '@rxvmm/sys';
import {
  advanceBuffers,
  blockDeviceBytes,
  blockDeviceSizePath,
  type SyncRangesBlockBackend,
} from '@rxvmm/virtio-blk';

function deviceSize(rdev: number): number {
  return blockDeviceBytes(readFileSync(blockDeviceSizePath(rdev), 'utf8'));
}

export class SyncFileBackend implements SyncRangesBlockBackend {
  readonly size: number;
  private fd: number | null;

  private constructor(
    fd: number,
    readonly readOnly: boolean,
  ) {
    this.fd = fd;
    const st = fstatSync(fd);
    this.size = st.isBlockDevice() ? deviceSize(st.rdev) : st.size;
  }

  /** Opens an existing file or block device (never creates one). */
  static open(path: string, options: { readOnly?: boolean } = {}): SyncFileBackend {
    const readOnly = options.readOnly ?? false;
    const fd = openSync(path, readOnly ? 'r' : 'r+');
    try {
      return new SyncFileBackend(fd, readOnly);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  private get handle(): number {
    if (this.fd === null) throw Object.assign(new Error('EBADF: backend closed'), { code: 'EBADF' });
    return this.fd;
  }

  readvSync(buffers: Uint8Array[], position: number): number {
    return buffersUntilDone(readvSync, this.handle, buffers, position);
  }

  writevSync(buffers: Uint8Array[], position: number): number {
    return buffersUntilDone(writevSync, this.handle, buffers, position);
  }

  readRangesSync(memory: Uint8Array, ranges: Float64Array, count: number, position: number): number {
    return rangesUntilDone(preadvRanges, this.handle, memory, ranges, count, position);
  }

  writeRangesSync(memory: Uint8Array, ranges: Float64Array, count: number, position: number): number {
    return rangesUntilDone(pwritevRanges, this.handle, memory, ranges, count, position);
  }

  flushSync(): void {
    if (!this.readOnly) fdatasyncSync(this.handle);
  }

  async readv(buffers: Uint8Array[], position: number): Promise<number> {
    return this.readvSync(buffers, position);
  }

  async writev(buffers: Uint8Array[], position: number): Promise<number> {
    return this.writevSync(buffers, position);
  }

  async flush(): Promise<void> {
    this.flushSync();
  }

  async close(): Promise<void> {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
  }
}

/**
 * `io` (readv or writev at a position) until every buffer is done or the file ends (a 0): one call
 * in the usual case, more after a short transfer.
 */
function buffersUntilDone(
  io: (fd: number, buffers: Uint8Array[], position: number) => number,
  fd: number,
  buffers: Uint8Array[],
  position: number,
): number {
  if (buffers.length === 0) return 0;
  let done = io(fd, buffers, position);
  if (done === 0 || done === total(buffers)) return done;
  let rest = advanceBuffers(buffers, done);
  while (rest.length > 0) {
    const n = io(fd, rest, position + done);
    if (n === 0) break; // end of file
    done += n;
    rest = advanceBuffers(rest, n);
  }
  return done;
}

/** `io` (preadvRanges or pwritevRanges) until every range is done or the file ends, as buffersUntilDone. */
function rangesUntilDone(
  io: (fd: number, memory: Uint8Array, ranges: Float64Array, count: number, position: number) => number,
  fd: number,
  memory: Uint8Array,
  ranges: Float64Array,
  count: number,
  position: number,
): number {
  let done = io(fd, memory, ranges, count, position);
  if (done === 0 || done === rangesTotal(ranges, count)) return done;
  let rest = advanceRanges(ranges, count, done);
  while (rest.length > 0) {
    const n = io(fd, memory, rest, rest.length / 2, position + done);
    if (n === 0) break; // end of file
    done += n;
    rest = advanceRanges(rest, rest.length / 2, n);
  }
  return done;
}

function total(buffers: readonly Uint8Array[]): number {
  let n = 0;
  for (const b of buffers) n += b.byteLength;
  return n;
}

function rangesTotal(ranges: Float64Array, count: number): number {
  let n = 0;
  for (let i = 0; i < count; i++) n += ranges[2 * i + 1]!;
  return n;
}

/** The ranges left after the first `n` bytes of `count` pairs moved (after a short transfer); changes `ranges`. */
function advanceRanges(ranges: Float64Array, count: number, n: number): Float64Array {
  let i = 0;
  let rest = n;
  while (i < count && rest >= ranges[2 * i + 1]!) rest -= ranges[2 * i++ + 1]!;
  if (i < count && rest > 0) {
    ranges[2 * i] = ranges[2 * i]! + rest;
    ranges[2 * i + 1] = ranges[2 * i + 1]! - rest;
  }
  return ranges.subarray(2 * i, 2 * count);
}
