/**
 * A BlockBackend doing preadv/pwritev synchronously on the event loop thread,
 * as QEMU's contrib/vhost-user-blk does. It is a `SyncBlockBackend`, so
 * virtio-blk serves each request in one call, without a promise. Why: on this class of machine a libuv
 * threadpool round trip (what fs.promises costs per request) is tens of
 * microseconds, more than a page-cache hit itself, and a back-end process
 * serves exactly one device, so there is nothing else for the loop to do while
 * the syscall runs. `--io async` in the CLI selects virtio-blk's FileBackend
 * instead (better when the disk is slow and several queues are busy).
 */
import { closeSync, fdatasyncSync, fstatSync, openSync, readFileSync, readvSync, writevSync } from 'node:fs';
import {
  advanceBuffers,
  blockDeviceBytes,
  blockDeviceSizePath,
  type SyncBlockBackend,
} from '@rxvmm/virtio-blk';

function deviceSize(rdev: number): number {
  return blockDeviceBytes(readFileSync(blockDeviceSizePath(rdev), 'utf8'));
}

export class SyncFileBackend implements SyncBlockBackend {
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
    const fd = this.handle;
    if (buffers.length === 0) return 0;
    let done = readvSync(fd, buffers, position);
    if (done === 0 || done === total(buffers)) return done; // the usual case: all of it in one call
    let rest = advanceBuffers(buffers, done);
    while (rest.length > 0) {
      const n = readvSync(fd, rest, position + done);
      if (n === 0) break; // end of file
      done += n;
      rest = advanceBuffers(rest, n);
    }
    return done;
  }

  writevSync(buffers: Uint8Array[], position: number): number {
    const fd = this.handle;
    if (buffers.length === 0) return 0;
    let done = writevSync(fd, buffers, position);
    if (done === 0 || done === total(buffers)) return done;
    let rest = advanceBuffers(buffers, done);
    while (rest.length > 0) {
      const n = writevSync(fd, rest, position + done);
      if (n === 0) break;
      done += n;
      rest = advanceBuffers(rest, n);
    }
    return done;
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

function total(buffers: readonly Uint8Array[]): number {
  let n = 0;
  for (const b of buffers) n += b.byteLength;
  return n;
}
