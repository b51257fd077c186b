/**
 * A vhost-user connection's byte stream: frames messages off a non-blocking
 * AF_UNIX socket (header first, then exactly `size` payload bytes), collects
 * the SCM_RIGHTS fds that arrive while a message is assembled, and sends
 * messages with fds. Readiness comes from the sys `Poller` (uv_poll), so the
 * event loop never blocks.
 *
 * A framing error or EOF ends the channel: `onClose(reason)` is called once,
 * every fd still owned by the channel is closed, and the socket is closed.
 */
import { close, Poller, type PollerHandle, recvMsg, sendMsg, UV_DISCONNECT, UV_READABLE } from '@rxvmm/sys';
import { type Header, parseHeader, type VhostUserProtocolError } from './message.js';
import { HEADER_SIZE, MAX_FDS, requestName } from './protocol.js';

/** A framed message: header, payload, and the fds that came with it (now the receiver's). */
export interface RawMessage {
  header: Header;
  payload: Uint8Array;
  fds: number[];
}

/** What a `MessageChannel` calls: each message as it is framed, and once when the connection ends. */
export interface ChannelHandlers {
  /** Called for each complete message; the handler owns `fds`. */
  onMessage(message: RawMessage): void;
  /** Called once when the channel ends; `reason` is null for an orderly EOF. */
  onClose(reason: string | null): void;
}

/** A vhost-user connection: frames messages (header, payload, SCM_RIGHTS fds) from a non-blocking Unix socket, sends them, and refuses framing violations by closing. */
export class MessageChannel {
  private poller: PollerHandle | null;
  private readonly headerBuf = new Uint8Array(HEADER_SIZE);
  private header: Header | null = null;
  private payload = new Uint8Array(0);
  private got = 0;
  private fds: number[] = [];
  private paused = false;
  private closedFlag = false;

  constructor(
    readonly fd: number,
    private readonly handlers: ChannelHandlers,
    /** The frontend's side reads replies (FLAG_REPLY set) instead of requests. */
    private readonly readsReplies = false,
  ) {
    this.poller = new Poller(fd, (error, events) => {
      if (error) return this.close(`poll error: ${error.message}`);
      if (events & UV_READABLE || events & UV_DISCONNECT) this.readAvailable();
    });
    this.poller.start(UV_READABLE | UV_DISCONNECT);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Stops reading (back-pressure while a slow request is processed). */
  pause(): void {
    if (this.closedFlag || this.paused) return;
    this.paused = true;
    this.poller?.stop();
  }

  /** Reads again after `pause()`. */
  resume(): void {
    if (this.closedFlag || !this.paused) return;
    this.paused = false;
    this.poller?.start(UV_READABLE | UV_DISCONNECT);
  }

  /**
   * Sends one message (with fds) in a single sendmsg. Returns false when the
   * channel is closed or the send fails (the channel then closes with the reason).
   */
  send(bytes: Uint8Array, fds: readonly number[] = []): boolean {
    if (this.closedFlag) return false;
    try {
      const n = sendMsg(this.fd, bytes, fds);
      // Replies are tiny; a full socket buffer means the peer does not read its replies.
      if (n === null) return this.fail('peer is not reading replies (socket buffer full)');
      if (n !== bytes.length) return this.fail(`short send of ${n}/${bytes.length} bytes`);
      return true;
    } catch (error) {
      return this.fail(`send failed: ${(error as Error).message}`);
    }
  }

  /** Closes the socket and every fd of a partly received message. */
  close(reason: string | null = null): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.poller?.close();
    this.poller = null;
    this.dropFds();
    close(this.fd);
    this.handlers.onClose(reason);
  }

  private fail(reason: string): false {
    this.close(reason);
    return false;
  }

  private dropFds(): void {
    for (const fd of this.fds.splice(0)) close(fd);
  }

  private readAvailable(): void {
    while (!this.closedFlag && !this.paused) {
      const target = this.header === null ? this.headerBuf : this.payload;
      let result: ReturnType<typeof recvMsg>;
      try {
        result = recvMsg(this.fd, target.subarray(this.got), MAX_FDS);
      } catch (error) {
        this.close(`receive failed: ${(error as Error).message}`);
        return;
      }
      if (result === null) return; // EAGAIN: wait for the next readiness
      this.fds.push(...result.fds);
      if (result.truncated || this.fds.length > MAX_FDS) {
        this.close(`too many fds with one message (limit ${MAX_FDS})`);
        return;
      }
      if (result.bytes === 0) {
        const midMessage = this.got > 0 || this.header !== null;
        this.close(
          midMessage
            ? `${this.readsReplies ? 'back-end' : 'frontend'} closed the connection in the middle of ${this.header ? requestName(this.header.request) : 'a header'}`
            : null,
        );
        return;
      }
      this.got += result.bytes;
      if (this.got < target.length) continue;
      if (this.header === null) {
        try {
          this.header = parseHeader(this.headerBuf, this.readsReplies);
        } catch (error) {
          this.close((error as VhostUserProtocolError).reason ?? String(error));
          return;
        }
        this.payload = new Uint8Array(this.header.size);
        this.got = 0;
        if (this.header.size === 0) this.deliver();
      } else {
        this.deliver();
      }
    }
  }

  private deliver(): void {
    const header = this.header as Header;
    const message: RawMessage = { header, payload: this.payload, fds: this.fds };
    this.header = null;
    this.payload = new Uint8Array(0);
    this.got = 0;
    this.fds = [];
    this.handlers.onMessage(message);
  }
}
