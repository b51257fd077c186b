/**
 * The listening side of a back-end: a Unix socket (bound here, or inherited as
 * a listening fd), one frontend at a time. While a session runs the listener is
 * not polled, so a second frontend waits in the backlog until the first has
 * gone and its state (mappings, fds) is fully released.
 *
 * An inherited fd may also be an already *connected* socket (libvirt hands a
 * back-end one end of a socketpair): then that one session is served and the
 * server is `finished` when it ends.
 */
import { fstatSync, readFileSync } from 'node:fs';
import { debug, errnoError } from '@rxvmm/errno';
import { close, Poller, type PollerHandle, setNonBlocking, UV_READABLE, unixAccept } from '@rxvmm/sys';
import { BackendSession, type Logger, type SessionStats } from './backend.js';
import type { ChainDevice } from '@rxvmm/virtio-ring';
import { type BoundSocket, listenOnPath, removeBoundSocket } from './socket-path.js';

/** Session events, silent unless NODE_DEBUG names rxvmm:vhost-user (a program passes `log` to show them). */
const log = debug('rxvmm:vhost-user');

/** Back-off after a failed accept (the error is usually EMFILE: fds must be freed first). */
const ACCEPT_RETRY_MS = 100;

/** Options of `new VhostUserServer(device, options)`. */
export interface ServerOptions {
  /**
   * Bind and listen on this path. Only a stale socket (one no process listens on) is replaced; a
   * file, directory, symlink or live socket there is an error (EEXIST, EADDRINUSE) and is left
   * untouched. Errors about the path name it and carry it as `.path`. The socket is removed at
   * close() only if the path is still the one bound here.
   */
  socketPath?: string;
  /** Or an inherited socket (`--fd N`): a listening one, or one connected to the frontend. */
  fd?: number;
  log?: Logger;
  /** Refuse memory regions whose fd is not sealed against shrinking (F_SEAL_SHRINK). Default false. */
  requireSealed?: boolean;
  /** Called when a session ends, with its final stats and reason. */
  onSessionEnd?(stats: SessionStats, reason: string | null): void;
}

/** True for a listening socket, false for a connected one (read from /proc/net/unix by inode). */
function isListeningSocket(fd: number): boolean {
  const st = fstatSync(fd);
  if (!st.isSocket()) throw errnoError('EINVAL', `fd ${fd} is not a socket`);
  const ACCEPTCON = 0x10000;
  for (const line of readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols[6] === String(st.ino)) return (Number.parseInt(cols[3] ?? '0', 16) & ACCEPTCON) !== 0;
  }
  return false;
}

/** A vhost-user back-end for any `ChainDevice`: listens on a Unix socket (or an inherited fd) and serves one frontend at a time, each as a `BackendSession`. */
export class VhostUserServer {
  /** The listening socket; null when serving one inherited connected socket. */
  private readonly listenFd: number | null;
  /** The socket bound at `socketPath` (null for an inherited fd). */
  private readonly bound: BoundSocket | null = null;
  private readonly poller: PollerHandle | null;
  private readonly log: Logger;
  private session: BackendSession | null = null;
  private closing: Promise<void> | null = null;
  /** Set while polling is paused after a failed accept. */
  private retryTimer: NodeJS.Timeout | undefined;
  private resolveFinished!: () => void;
  /** Resolves once the server can serve no more: after close(), or when an inherited connected socket's session ended. */
  readonly finished: Promise<void>;
  /** Completed sessions since start. */
  sessions = 0;

  constructor(
    private readonly device: ChainDevice,
    private readonly options: ServerOptions,
  ) {
    this.log = options.log ?? log;
    this.finished = new Promise((resolve) => {
      this.resolveFinished = resolve;
    });
    if (options.fd !== undefined && !isListeningSocket(options.fd)) {
      this.listenFd = null;
      this.poller = null;
      setNonBlocking(options.fd, true);
      this.startSession(options.fd);
      return;
    }
    if (options.fd !== undefined) {
      this.listenFd = options.fd;
      setNonBlocking(this.listenFd, true);
    } else if (options.socketPath !== undefined) {
      this.bound = listenOnPath(options.socketPath, 4);
      this.listenFd = this.bound.fd;
    } else {
      throw new TypeError('VhostUserServer needs socketPath or fd');
    }
    this.poller = new Poller(this.listenFd, (error) => {
      if (error) this.log(`vhost-user: listener poll error: ${error.message}`);
      else this.acceptOne();
    });
    this.poller.start(UV_READABLE);
  }

  /** The session being served, if any. */
  get current(): BackendSession | null {
    return this.session;
  }

  private acceptOne(): void {
    if (this.session !== null || this.closing !== null || this.listenFd === null) return;
    let fd: number | null;
    try {
      fd = unixAccept(this.listenFd);
    } catch (error) {
      // The connection stays queued, so the listener stays readable: polling again at once would
      // fail the same way (EMFILE...) in a busy loop. Back off, then try again.
      this.log(`vhost-user: accept failed: ${(error as Error).message}; retrying in ${ACCEPT_RETRY_MS} ms`);
      this.poller?.stop();
      this.retryTimer ??= setTimeout(() => {
        this.retryTimer = undefined;
        if (this.session === null && this.closing === null) this.poller?.start(UV_READABLE);
      }, ACCEPT_RETRY_MS);
      return;
    }
    if (fd === null) return;
    this.poller?.stop(); // one frontend at a time
    this.startSession(fd);
  }

  private startSession(fd: number): void {
    const session = new BackendSession(fd, this.device, {
      log: this.log,
      requireSealed: this.options.requireSealed ?? false,
      onEnd: (reason) => {
        const stats = session.stats;
        this.session = null;
        this.sessions++;
        this.options.onSessionEnd?.(stats, reason);
        if (this.listenFd === null)
          this.resolveFinished(); // the one inherited connection is over
        else if (this.closing === null) this.poller?.start(UV_READABLE);
      },
    });
    this.session = session;
  }

  /** True when serving a single inherited connected socket (no listener). */
  get connectedMode(): boolean {
    return this.listenFd === null;
  }

  /**
   * Stops listening, ends the current session (releasing everything) and removes the socket file,
   * unless another process has bound a new socket at the path since (that one is left alone).
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      this.poller?.close();
      if (this.session) await this.session.dispose('back-end shutting down');
      if (this.listenFd !== null) close(this.listenFd);
      if (this.bound !== null && removeBoundSocket(this.bound) === 'replaced')
        this.log(`vhost-user: ${this.bound.path} is no longer the socket bound here: left in place`);
      this.resolveFinished();
    })();
    return this.closing;
  }
}
