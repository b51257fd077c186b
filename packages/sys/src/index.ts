/**
 * @rxvmm/sys: the thin native layer of rxvmm. Every function here is one
 * syscall (or one libuv call) with errors reported as Error objects whose
 * `.code` is the errno name. No logic lives here that TypeScript can do.
 */
import { native, type RecvMsgResult } from './binding.js';

export type { NativeBinding, PollerConstructor, PollerHandle, RecvMsgResult } from './binding.js';

/** eventfd2(2). `initval` is a 32-bit unsigned integer; flags are `EFD_*`. Returns the fd. */
export const eventfd: (initval: number, flags: number) => number = native.eventfd;
/** read(2) of an 8-byte counter. Throws (e.g. `EAGAIN`) on failure. */
export const read8: (fd: number) => bigint = native.read8;
/** read(2) of an 8-byte counter; `null` instead of throwing `EAGAIN`. */
export const tryRead8: (fd: number) => bigint | null = native.tryRead8;
/** write(2) of an 8-byte counter. */
export const write8: (fd: number, value: bigint) => void = native.write8;
/** read(2) of `length` (0..64) bytes into a scratch buffer; returns the byte count. */
export const readRaw: (fd: number, length: number) => number = native.readRaw;
/** write(2) of the given bytes; returns the byte count. */
export const writeRaw: (fd: number, bytes: Uint8Array) => number = native.writeRaw;
/** close(2). */
export const close: (fd: number) => void = native.close;
/** poll(2) of one fd, blocking the calling thread up to `timeoutMs` (-1: forever). Returns revents, 0 on timeout. */
export const pollWait: (fd: number, events: number, timeoutMs: number) => number = native.pollWait;
/** libuv readiness polling of an fd on the calling thread's event loop. */
export const Poller = native.Poller;

export const {
  /** eventfd2(2) flag: semaphore semantics (a read takes 1 from the counter, not all of it). */
  EFD_SEMAPHORE,
  /** eventfd2(2) flag: O_NONBLOCK (a read of 0 or a write that would overflow fails with EAGAIN). */
  EFD_NONBLOCK,
  /** eventfd2(2) flag: close-on-exec. */
  EFD_CLOEXEC,
  /** poll(2) event: readable. */
  POLLIN,
  /** poll(2) event: writable. */
  POLLOUT,
  /** poll(2) revent: error condition. */
  POLLERR,
  /** poll(2) revent: hang-up. */
  POLLHUP,
  /** poll(2) revent: the fd is not open. */
  POLLNVAL,
} = native.fdConstants;
export const {
  /** `Poller` event: the fd is readable (libuv UV_READABLE). */
  UV_READABLE,
  /** `Poller` event: the fd is writable (libuv UV_WRITABLE). */
  UV_WRITABLE,
  /** `Poller` event: the peer hung up (libuv UV_DISCONNECT). */
  UV_DISCONNECT,
} = native.pollConstants;

// --- AF_UNIX stream sockets with SCM_RIGHTS (vhost-user) ---
/** socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC [| SOCK_NONBLOCK]). */
export const unixSocket: (nonblock: boolean) => number = native.unixSocket;
/** socketpair(AF_UNIX, SOCK_STREAM), both ends non-blocking and close-on-exec. */
export const unixSocketPair: () => [number, number] = native.unixSocketPair;
/** bind(2) to a filesystem path. */
export const unixBind: (fd: number, path: string) => void = native.unixBind;
/** listen(2). */
export const unixListen: (fd: number, backlog: number) => void = native.unixListen;
/** accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC; `null` when no connection is pending. */
export const unixAccept: (fd: number) => number | null = native.unixAccept;
/** connect(2) to a filesystem path. */
export const unixConnect: (fd: number, path: string) => void = native.unixConnect;
/** Sets or clears O_NONBLOCK. */
export const setNonBlocking: (fd: number, on: boolean) => void = native.setNonBlocking;
/** shutdown(SHUT_RDWR). */
export const shutdownSocket: (fd: number) => void = native.shutdownSocket;
/** sendmsg(2) with optional SCM_RIGHTS fds and MSG_NOSIGNAL; bytes sent, or `null` on EAGAIN. */
export const sendMsg: (fd: number, bytes: Uint8Array, fds?: readonly number[]) => number | null =
  native.sendMsg;
/** recvmsg(2) with room for `maxFds` fds; `null` on EAGAIN. */
export const recvMsg: (fd: number, buffer: Uint8Array, maxFds: number) => RecvMsgResult | null =
  native.recvMsg;

// --- file transfers into ranges of one buffer (guest memory) ---
/**
 * preadv(2) at file `position` into `count` ranges of `buffer`: range i is the bytes
 * `[ranges[2i], ranges[2i] + ranges[2i+1])` of the buffer (offset, length pairs). One call for
 * a scatter list of any length up to `IOV_MAX`, without a view per piece. Every range is checked
 * against the buffer first: a number that is not an integer 0..2^53 (or a bad count or position)
 * is `EINVAL`, a range outside the buffer (a detached one has 0 bytes) `EFAULT`; nothing is read
 * then. Returns the bytes read: short at the end of the file, or when the kernel stops early
 * (call again for the rest). Retries `EINTR`.
 */
export const preadvRanges: (
  fd: number,
  buffer: Uint8Array,
  ranges: Float64Array,
  count: number,
  position: number,
) => number = native.preadvRanges;
/** pwritev(2) from ranges of `buffer`, checked as {@link preadvRanges} checks them; returns the bytes written. */
export const pwritevRanges: (
  fd: number,
  buffer: Uint8Array,
  ranges: Float64Array,
  count: number,
  position: number,
) => number = native.pwritevRanges;
/** The most ranges one {@link preadvRanges} / {@link pwritevRanges} call takes (the kernel's UIO_MAXIOV, 1024). */
export const IOV_MAX: number = native.IOV_MAX;

// --- memory mappings ---
/** mmap(2) with a kernel-chosen address; returns the address. */
export const mmap: (length: number, prot: number, flags: number, fd: number, offset: bigint) => bigint =
  native.mmap;
/** munmap(2). Every ArrayBuffer made over the range must be dropped first. */
export const munmap: (address: bigint, length: number) => void = native.munmap;
/** A zero-copy ArrayBuffer over a mapping it does not own. */
export const mappingBuffer: (address: bigint, length: number) => ArrayBuffer = native.mappingBuffer;
/** memfd_create(2). */
export const memfdCreate: (name: string, flags: number) => number = native.memfdCreate;
export const {
  /** mmap(2) protection: no access. */
  PROT_NONE,
  /** mmap(2) protection: readable. */
  PROT_READ,
  /** mmap(2) protection: writable. */
  PROT_WRITE,
  /** mmap(2) flag: writes reach the file and every other mapping of it (guest RAM shared with a back-end). */
  MAP_SHARED,
  /** mmap(2) flag: copy-on-write private mapping. */
  MAP_PRIVATE,
  /** mmap(2) flag: not backed by a file (`fd` -1). */
  MAP_ANONYMOUS,
  /** mmap(2) flag: reserve no swap for the mapping. */
  MAP_NORESERVE,
  /** memfd_create(2) flag: close-on-exec. */
  MFD_CLOEXEC,
  /** memfd_create(2) flag: the memfd may be sealed (`addSeals`). */
  MFD_ALLOW_SEALING,
} = native.mmanConstants;

// --- file seals (memfd) ---
/** fcntl(F_GET_SEALS): the `F_SEAL_*` bits of a memfd (or other shmem file); `EINVAL` for a file without seals. */
export const getSeals: (fd: number) => number = native.getSeals;
/** fcntl(F_ADD_SEALS): adds `F_SEAL_*` bits; `EPERM` when sealing is not allowed (F_SEAL_SEAL, no MFD_ALLOW_SEALING). */
export const addSeals: (fd: number, seals: number) => void = native.addSeals;
export const {
  /** File seal: no further seal may be added. */
  F_SEAL_SEAL,
  /** File seal: the file cannot shrink (a mapping of it cannot fault past a new end). */
  F_SEAL_SHRINK,
  /** File seal: the file cannot grow. */
  F_SEAL_GROW,
  /** File seal: the contents cannot be written (needs no writable shared mapping). */
  F_SEAL_WRITE,
  /** File seal: no new writable mapping or write; existing writable mappings keep working. */
  F_SEAL_FUTURE_WRITE,
} = native.sealConstants;

// --- ioctl and thread kicks (kvm-linux) ---
/**
 * ioctl(2) with an integer argument or a pointer to a Uint8Array's bytes.
 * Internal plumbing for typed struct encoders (kvm-linux); not for public APIs.
 */
export const ioctl: (fd: number, request: number, arg?: number | Uint8Array) => number = native.ioctl;
/** ioctl(2) that returns -EINTR (-4) when interrupted instead of throwing (KVM_RUN). */
export const ioctlIntr: (fd: number, request: number, arg?: number | Uint8Array) => number = native.ioctlIntr;
/** ftruncate(2). */
export const ftruncate: (fd: number, length: number) => void = native.ftruncate;
/** Detaches an ArrayBuffer (e.g. from mappingBuffer) so its views become empty before munmap. */
export const detachBuffer: (buffer: ArrayBuffer) => void = native.detachBuffer;
/**
 * Makes the calling thread kickable: installs the no-op kick signal handler
 * (SIGUSR2, without SA_RESTART) once per process, unblocks the signal in this
 * thread, and returns its kernel thread id.
 */
export const prepareKickTarget: () => number = native.prepareKickTarget;
/** gettid(2): the calling thread's kernel thread id. */
export const gettid: () => number = native.gettid;
/** tgkill(2) with the kick signal: interrupts a blocking call (KVM_RUN → EINTR) in that thread; false if it is gone. */
export const kickThread: (tid: number) => boolean = native.kickThread;
/** The kick signal number (SIGUSR2). */
export const KICK_SIGNAL: number = native.KICK_SIGNAL;
