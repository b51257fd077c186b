// Loads the native addon: a prebuilt binary from prebuilds/ when the package
// ships one, otherwise the one node-gyp built at install time.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;

/** Package root: one level above both src/ and dist/. */
const packageRoot = fileURLToPath(new URL('..', import.meta.url));

export const native = nodeGypBuild(packageRoot) as NativeBinding;

export interface PollerHandle {
  /** Starts (or changes) polling; events are `pollConstants` bits. */
  start(events: number): void;
  /** Stops polling; the poller may be started again. */
  stop(): void;
  /** Stops and releases the libuv handle; the poller is unusable afterwards. */
  close(): void;
}

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

export interface NativeBinding {
  eventfd(initval: number, flags: number): number;
  read8(fd: number): bigint;
  tryRead8(fd: number): bigint | null;
  write8(fd: number, value: bigint): void;
  readRaw(fd: number, length: number): number;
  writeRaw(fd: number, bytes: Uint8Array): number;
  close(fd: number): void;
  pollWait(fd: number, events: number, timeoutMs: number): number;
  Poller: PollerConstructor;
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
  pollConstants: { UV_READABLE: number; UV_WRITABLE: number; UV_DISCONNECT: number };
  // unix_socket.cc (vhost-user)
  unixSocket(nonblock: boolean): number;
  unixSocketPair(): [number, number];
  unixBind(fd: number, path: string): void;
  unixListen(fd: number, backlog: number): void;
  unixAccept(fd: number): number | null;
  unixConnect(fd: number, path: string): void;
  setNonBlocking(fd: number, on: boolean): void;
  shutdownSocket(fd: number): void;
  sendMsg(fd: number, bytes: Uint8Array, fds?: readonly number[]): number | null;
  recvMsg(fd: number, buffer: Uint8Array, maxFds: number): RecvMsgResult | null;
  // mman.cc
  mmap(length: number, prot: number, flags: number, fd: number, offset: bigint): bigint;
  munmap(address: bigint, length: number): void;
  mappingBuffer(address: bigint, length: number): ArrayBuffer;
  memfdCreate(name: string, flags: number): number;
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
  getSeals(fd: number): number;
  addSeals(fd: number, seals: number): void;
  sealConstants: {
    F_SEAL_SEAL: number;
    F_SEAL_SHRINK: number;
    F_SEAL_GROW: number;
    F_SEAL_WRITE: number;
    F_SEAL_FUTURE_WRITE: number;
  };
  // ioctl.cc (kvm-linux)
  ioctl(fd: number, request: number, arg?: number | Uint8Array): number;
  ioctlIntr(fd: number, request: number, arg?: number | Uint8Array): number;
  ftruncate(fd: number, length: number): void;
  detachBuffer(buffer: ArrayBuffer): void;
  // kick.cc (kvm-linux)
  prepareKickTarget(): number;
  gettid(): number;
  kickThread(tid: number): boolean;
  KICK_SIGNAL: number;
}

/** One recvmsg(2): `bytes` read (0 = EOF), fds received (close-on-exec), `truncated` if fds were dropped. */
export interface RecvMsgResult {
  bytes: number;
  fds: number[];
  truncated: boolean;
}
