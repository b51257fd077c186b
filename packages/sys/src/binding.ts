// Loads the native addon: a prebuilt binary from prebuilds/ when the package
// ships one, otherwise the one node-gyp built at install time.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;

/** Package root: one level above both src/ and dist/. */
const packageRoot = fileURLToPath(new URL('..', import.meta.url));

/** The loaded addon: the functions and constants `@rxvmm/sys` re-exports one by one. */
export const native = nodeGypBuild(packageRoot) as NativeBinding;

/** A libuv poll handle on one fd (`new Poller(...)`): start, stop, close. */
export interface PollerHandle {
  /** Starts (or changes) polling; events are `pollConstants` bits. */
  start(events: number): void;
  /** Stops polling; the poller may be started again. */
  stop(): void;
  /** Stops and releases the libuv handle; the poller is unusable afterwards. */
  close(): void;
}

/** The `Poller` class of the addon. */
export interface PollerConstructor {
  /**
   * Polls `fd` on the calling thread's libuv loop. In counter mode a readable fd
   * is read (8 bytes) natively and the value is passed as `value`; spurious
   * readiness is swallowed.
   */
  new (
    fd: number,
    callback: (error: NodeJS.ErrnoException | null, events: number, value?: bigint) => void,
    counterMode?: boolean,
  ): PollerHandle;
}

/** The addon's exports as TypeScript sees them; use the named exports of `@rxvmm/sys`, which are these. */
export interface NativeBinding {
  /** See {@link eventfd}. */
  eventfd(initval: number, flags: number): number;
  /** See {@link read8}. */
  read8(fd: number): bigint;
  /** See {@link tryRead8}. */
  tryRead8(fd: number): bigint | null;
  /** See {@link write8}. */
  write8(fd: number, value: bigint): void;
  /** See {@link readRaw}. */
  readRaw(fd: number, length: number): number;
  /** See {@link writeRaw}. */
  writeRaw(fd: number, bytes: Uint8Array): number;
  /** See {@link close}. */
  close(fd: number): void;
  /** See {@link pollWait}. */
  pollWait(fd: number, events: number, timeoutMs: number): number;
  /** See {@link Poller}. */
  Poller: PollerConstructor;
  /** eventfd2 flags and poll events (re-exported one by one). */
  fdConstants: {
    EFD_SEMAPHORE: number;
    EFD_NONBLOCK: number;
    EFD_CLOEXEC: number;
    POLLIN: number;
    POLLOUT: number;
    POLLERR: number;
    POLLHUP: number;
    POLLNVAL: number;
  };
  /** `Poller` events (re-exported one by one). */
  pollConstants: { UV_READABLE: number; UV_WRITABLE: number; UV_DISCONNECT: number };
  // unix_socket.cc (vhost-user)
  /** See {@link unixSocket}. */
  unixSocket(nonblock: boolean): number;
  /** See {@link unixSocketPair}. */
  unixSocketPair(): [number, number];
  /** See {@link unixBind}. */
  unixBind(fd: number, path: string): void;
  /** See {@link unixListen}. */
  unixListen(fd: number, backlog: number): void;
  /** See {@link unixAccept}. */
  unixAccept(fd: number): number | null;
  /** See {@link unixConnect}. */
  unixConnect(fd: number, path: string): void;
  /** See {@link setNonBlocking}. */
  setNonBlocking(fd: number, on: boolean): void;
  /** See {@link shutdownSocket}. */
  shutdownSocket(fd: number): void;
  /** See {@link sendMsg}. */
  sendMsg(fd: number, bytes: Uint8Array, fds?: readonly number[]): number | null;
  /** See {@link recvMsg}. */
  recvMsg(fd: number, buffer: Uint8Array, maxFds: number): RecvMsgResult | null;
  // ranges_io.cc (vhost-user-blk's synchronous transfers)
  /** See {@link preadvRanges}. */
  preadvRanges(fd: number, buffer: Uint8Array, ranges: Float64Array, count: number, position: number): number;
  /** See {@link pwritevRanges}. */
  pwritevRanges(
    fd: number,
    buffer: Uint8Array,
    ranges: Float64Array,
    count: number,
    position: number,
  ): number;
  /** See {@link IOV_MAX}. */
  IOV_MAX: number;
  // mman.cc
  /** See {@link mmap}. */
  mmap(length: number, prot: number, flags: number, fd: number, offset: bigint): bigint;
  /** See {@link munmap}. */
  munmap(address: bigint, length: number): void;
  /** See {@link mappingBuffer}. */
  mappingBuffer(address: bigint, length: number): ArrayBuffer;
  /** See {@link memfdCreate}. */
  memfdCreate(name: string, flags: number): number;
  /** mmap and memfd_create constants (re-exported one by one). */
  mmanConstants: {
    PROT_NONE: number;
    PROT_READ: number;
    PROT_WRITE: number;
    MAP_SHARED: number;
    MAP_PRIVATE: number;
    MAP_ANONYMOUS: number;
    MAP_NORESERVE: number;
    MFD_CLOEXEC: number;
    MFD_ALLOW_SEALING: number;
  };
  // seals.cc
  /** See {@link getSeals}. */
  getSeals(fd: number): number;
  /** See {@link addSeals}. */
  addSeals(fd: number, seals: number): void;
  /** File seal bits (re-exported one by one). */
  sealConstants: {
    F_SEAL_SEAL: number;
    F_SEAL_SHRINK: number;
    F_SEAL_GROW: number;
    F_SEAL_WRITE: number;
    F_SEAL_FUTURE_WRITE: number;
  };
  // ioctl.cc (kvm-linux)
  /** See {@link ioctl}. */
  ioctl(fd: number, request: number, arg?: number | Uint8Array): number;
  /** See {@link ioctlIntr}. */
  ioctlIntr(fd: number, request: number, arg?: number | Uint8Array): number;
  /** See {@link ftruncate}. */
  ftruncate(fd: number, length: number): void;
  /** See {@link detachBuffer}. */
  detachBuffer(buffer: ArrayBuffer): void;
  // kick.cc (kvm-linux)
  /** See {@link prepareKickTarget}. */
  prepareKickTarget(): number;
  /** See {@link gettid}. */
  gettid(): number;
  /** See {@link kickThread}. */
  kickThread(tid: number): boolean;
  /** See {@link KICK_SIGNAL}. */
  KICK_SIGNAL: number;
}

/** One recvmsg(2): `bytes` read (0 = EOF), fds received (close-on-exec), `truncated` if fds were dropped. */
export interface RecvMsgResult {
  /** Bytes read; 0 at end of stream. */
  bytes: number;
  /** Descriptors received with SCM_RIGHTS (close-on-exec); the caller owns them. */
  fds: number[];
  /** True when the kernel dropped descriptors that did not fit (MSG_CTRUNC). */
  truncated: boolean;
}
