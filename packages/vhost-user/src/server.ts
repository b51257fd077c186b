/**
 * The listening side of a back-end: a Unix socket (bound here, or inherited as
 * a listening fd), one frontend at a time. While a session runs the listener is
 * not polled, so a second frontend waits in the backlog until the first has
 * gone and its state (mappings, fds) is fully released.
 */
import { unlinkSync } from 'node:fs';
import {
  close,
  Poller,
  type PollerHandle,
  setNonBlocking,
  UV_READABLE,
  unixAccept,
  unixBind,
  unixListen,
  unixSocket,
} from '@rxvmm/sys';
import { BackendSession, type Logger, type SessionStats } from './backend.js';
import type { VhostUserDevice } from './device.js';

export interface ServerOptions {
  /** Bind and listen on this path (an existing socket file is replaced). */
  socketPath?: string;
  /** Or serve an inherited listening socket (`--fd N`). */
  fd?: number;
  log?: Logger;
  /** Called when a session ends, with its final stats and reason. */
  onSessionEnd?(stats: SessionStats, reason: string | null): void;
}

export class VhostUserServer {
  private readonly listenFd: number;
  private readonly poller: PollerHandle;
  private readonly log: Logger;
  private session: BackendSession | null = null;
  private closing: Promise<void> | null = null;
  /** Completed sessions since start. */
  sessions = 0;

  constructor(
    private readonly device: VhostUserDevice,
    private readonly options: ServerOptions,
  ) {
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    if (options.fd !== undefined) {
      this.listenFd = options.fd;
      setNonBlocking(this.listenFd, true);
    } else if (options.socketPath !== undefined) {
      try {
        unlinkSync(options.socketPath);
      } catch {}
      this.listenFd = unixSocket(true);
      try {
        unixBind(this.listenFd, options.socketPath);
        unixListen(this.listenFd, 4);
      } catch (error) {
        close(this.listenFd);
        throw error;
      }
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
    if (this.session !== null || this.closing !== null) return;
    let fd: number | null;
    try {
      fd = unixAccept(this.listenFd);
    } catch (error) {
      this.log(`vhost-user: accept failed: ${(error as Error).message}`);
      return;
    }
    if (fd === null) return;
    this.poller.stop(); // one frontend at a time
    const session = new BackendSession(fd, this.device, {
      log: this.log,
      onEnd: (reason) => {
        const stats = session.stats;
        this.session = null;
        this.sessions++;
        this.options.onSessionEnd?.(stats, reason);
        if (this.closing === null) {
          this.poller.start(UV_READABLE);
        }
      },
    });
    this.session = session;
  }

  /** Stops listening, ends the current session (releasing everything) and removes the socket file. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.poller.close();
      if (this.session) await this.session.dispose('back-end shutting down');
      close(this.listenFd);
      if (this.options.socketPath !== undefined) {
        try {
          unlinkSync(this.options.socketPath);
        } catch {}
      }
    })();
    return this.closing;
  }
}
