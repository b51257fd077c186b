/**
 * One frontend session of the back-end: the vhost-user state machine over a
 * connected socket. Messages are handled strictly in order (a request whose
 * handling waits, like GET_VRING_BASE draining in-flight I/O, holds back the
 * ones after it). Error policy:
 *
 * - framing/encoding violations (bad header, oversize, unknown request, wrong
 *   payload size, wrong fd count): the connection is closed with the reason;
 * - a well-formed request that cannot be honoured (unmappable or overlapping
 *   regions, ring address outside the table, queue index out of range, ...):
 *   an error reply when the frontend asked for one (REPLY_ACK + need-reply),
 *   otherwise the connection is closed with the reason.
 *
 * When the session ends (close, error, or `dispose()`), rings are stopped,
 * in-flight requests awaited, then every mapping and fd is released.
 */

import { readlinkSync } from 'node:fs';
import { debug, type ErrnoError, errnoError } from '@rxvmm/errno';
import type { GuestMemory } from '@rxvmm/guest-memory';
import { close } from '@rxvmm/sys';
import { hasFeature, VirtioFeature } from '@rxvmm/virtio';
import type { ChainBufferHandler, ChainDevice, DescriptorChain } from '@rxvmm/virtio-ring';
import { MessageChannel, type RawMessage } from './channel.js';
import { checkInflightShape, createInflightFd, InflightRegion, type RegionViews } from './inflight-region.js';
import { MemoryTable } from './memory-table.js';
import {
  encodeConfig,
  encodeInflight,
  encodeReply,
  encodeU64,
  encodeVringState,
  type Message,
  parseMessage,
  VhostUserProtocolError,
} from './message.js';
import {
  bit,
  MAX_CONFIG_SIZE,
  ProtocolFeature,
  Request,
  requestName,
  VHOST_USER_F_PROTOCOL_FEATURES,
} from './protocol.js';
import {
  checkRingSize,
  signal,
  translateRingAreas,
  Vring,
  type VringHost,
  type VringStats,
} from './vring.js';

/** Session events, silent unless NODE_DEBUG names rxvmm:vhost-user (a program passes `log` to show them). */
const log = debug('rxvmm:vhost-user');

/** Kick/call/err fds must be eventfds: anything else (a pipe, a file) would be read as garbage. */
function isEventFd(fd: number): boolean {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[eventfd]';
  } catch {
    return false;
  }
}

/** Protocol features this back-end offers. */
export const BACKEND_PROTOCOL_FEATURES =
  bit(ProtocolFeature.MQ) |
  bit(ProtocolFeature.REPLY_ACK) |
  bit(ProtocolFeature.CONFIG) |
  bit(ProtocolFeature.INFLIGHT_SHMFD) |
  bit(ProtocolFeature.RESET_DEVICE);

/** Messages the back-end answers with a payload of their own (need-reply does not apply). */
const WITH_REPLY = new Set<number>([
  Request.GET_FEATURES,
  Request.GET_PROTOCOL_FEATURES,
  Request.GET_VRING_BASE,
  Request.GET_QUEUE_NUM,
  Request.GET_CONFIG,
  Request.GET_INFLIGHT_FD,
]);

/** A reply that carries fds (GET_INFLIGHT_FD): they are sent with it, then closed here. */
interface ReplyWithFds {
  payload: Uint8Array;
  fds: number[];
}

/** Pending messages before the socket stops being read (back-pressure). */
const MAX_QUEUED = 32;

export type Logger = (line: string) => void;

export interface SessionStats {
  messages: number;
  rings: VringStats[];
}

export interface BackendSessionOptions {
  log?: Logger;
  /** Called once after the session has released everything; `reason` null for an orderly close. */
  onEnd?(reason: string | null): void;
  /** Refuse SET_MEM_TABLE regions whose fd lacks F_SEAL_SHRINK (a frontend could shrink them: SIGBUS). Default false. */
  requireSealed?: boolean;
}

/** One frontend's session on the back-end: its messages handled in order, its memory table, rings and their serving loops. `VhostUserServer` makes one per connection. */
export class BackendSession implements VringHost {
  private readonly channel: MessageChannel;
  private readonly log: Logger;
  private readonly rings: Vring[];
  private readonly queued: RawMessage[] = [];
  private running = false;
  private ended = false;
  private endReason: string | null = null;
  private table: MemoryTable | null = null;
  /** The inflight region of SET_INFLIGHT_FD (INFLIGHT_SHMFD), and each queue's views of it. */
  private inflightRegion: InflightRegion | null = null;
  private inflightViews: (RegionViews | undefined)[] = [];
  private ackedFeatures = 0n;
  private ackedProtocol = 0n;
  private messages = 0;
  /** Resolves when the session released everything. */
  readonly done: Promise<string | null>;
  private resolveDone!: (reason: string | null) => void;

  constructor(
    fd: number,
    private readonly device: ChainDevice,
    private readonly options: BackendSessionOptions = {},
  ) {
    this.log = options.log ?? log;
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
    this.rings = Array.from({ length: device.queueMaxSizes.length }, (_, i) => new Vring(i, this));
    this.channel = new MessageChannel(fd, {
      onMessage: (message) => this.enqueue(message),
      onClose: (reason) => void this.teardown(reason),
    });
  }

  get memory(): GuestMemory | null {
    return this.table?.guestMemory ?? null;
  }

  get eventIdx(): boolean {
    return hasFeature(this.ackedFeatures, VirtioFeature.EVENT_IDX);
  }

  get indirect(): boolean {
    return hasFeature(this.ackedFeatures, VirtioFeature.INDIRECT_DESC);
  }

  get packed(): boolean {
    return hasFeature(this.ackedFeatures, VirtioFeature.RING_PACKED);
  }

  inflight(index: number): { views: RegionViews; descNum: number } | null {
    const region = this.inflightRegion;
    if (region === null || index >= region.numQueues) return null;
    this.inflightViews[index] ??= region.queueViews(index);
    return { views: this.inflightViews[index] as RegionViews, descNum: region.queueSize };
  }

  note(line: string): void {
    this.log(line);
  }

  get stats(): SessionStats {
    return { messages: this.messages, rings: this.rings.map((r) => ({ ...r.stats })) };
  }

  /** The guest-physical address of a frontend virtual address range (EFAULT when the table does not cover it). */
  vaToGpa(va: bigint, len: bigint): bigint {
    if (this.table === null) throw errnoError('EFAULT', 'no memory table');
    return this.table.vaToGpa(va, len);
  }

  handleChain(queueIndex: number, memory: GuestMemory, chain: DescriptorChain): number | PromiseLike<number> {
    return this.device.handleChain(chain, memory, queueIndex);
  }

  /** The device's synchronous fast path (`ChainDevice.handleChainBuffer`), or undefined when it has none. */
  chainBufferHandler(queueIndex: number, memory: GuestMemory): ChainBufferHandler | undefined {
    const device = this.device;
    if (device.handleChainBuffer === undefined) return undefined;
    return (chain) => device.handleChainBuffer!(chain, memory, queueIndex);
  }

  ringFailed(queueIndex: number, error: Error): void {
    this.log(`vhost-user: queue ${queueIndex} stopped: ${error.message}`);
    const err = this.rings[queueIndex]?.err;
    if (err && !err.closed) signal(err);
  }

  /** Ends the session from our side (shutdown); resolves when everything is released. */
  dispose(reason: string | null = null): Promise<string | null> {
    this.channel.close(reason);
    return this.done;
  }

  private enqueue(message: RawMessage): void {
    if (this.ended) {
      for (const fd of message.fds) close(fd);
      return;
    }
    this.queued.push(message);
    if (this.queued.length >= MAX_QUEUED) this.channel.pause();
    if (!this.running) void this.run();
  }

  private async run(): Promise<void> {
    this.running = true;
    while (this.queued.length > 0 && !this.ended) {
      const raw = this.queued.shift() as RawMessage;
      if (this.queued.length < MAX_QUEUED / 2) this.channel.resume();
      await this.handleRaw(raw);
    }
    this.running = false;
  }

  private async handleRaw(raw: RawMessage): Promise<void> {
    this.messages++;
    let message: Message;
    try {
      message = parseMessage(raw.header, raw.payload, raw.fds);
    } catch (error) {
      for (const fd of raw.fds) close(fd);
      this.channel.close((error as VhostUserProtocolError).reason ?? String(error));
      return;
    }
    const name = requestName(message.request);
    try {
      const reply = await this.dispatch(message);
      if (this.ended) {
        if (reply !== undefined && !(reply instanceof Uint8Array)) for (const fd of reply.fds) close(fd);
        return;
      }
      if (reply instanceof Uint8Array) {
        this.channel.send(encodeReply(message.request, reply));
      } else if (reply !== undefined) {
        try {
          this.channel.send(encodeReply(message.request, reply.payload), reply.fds);
        } finally {
          for (const fd of reply.fds) close(fd); // the peer has its own copies now
        }
      } else if (message.needReply && this.protocolAcked(ProtocolFeature.REPLY_ACK)) {
        this.channel.send(encodeReply(message.request, encodeU64(0n)));
      }
    } catch (error) {
      if (message.kind === 'vringFd' && message.fd !== null) {
        // The fd was not adopted by a ring.
        try {
          close(message.fd);
        } catch {}
      }
      const reason = `${name} refused: ${(error as Error).message}`;
      if (error instanceof VhostUserProtocolError || !(error as ErrnoError).code) {
        this.channel.close(reason);
        return;
      }
      if (
        !WITH_REPLY.has(message.request) &&
        message.needReply &&
        this.protocolAcked(ProtocolFeature.REPLY_ACK)
      ) {
        this.log(`vhost-user: ${reason} (error reply sent)`);
        this.channel.send(encodeReply(message.request, encodeU64(1n)));
      } else {
        this.channel.close(reason);
      }
    }
  }

  private protocolAcked(feature: bigint): boolean {
    return (this.ackedProtocol & bit(feature)) !== 0n;
  }

  private ring(index: number): Vring {
    const ring = this.rings[index];
    if (ring === undefined)
      throw errnoError('ERANGE', `queue index ${index} out of range (device has ${this.rings.length})`);
    return ring;
  }

  /** Handles one request; returns a reply payload for requests that have one. */
  private async dispatch(m: Message): Promise<Uint8Array | ReplyWithFds | undefined> {
    switch (m.request) {
      case Request.GET_FEATURES:
        return encodeU64(this.offeredFeatures());
      case Request.SET_FEATURES: {
        const value = (m as Extract<Message, { kind: 'u64' }>).value;
        const unknown = value & ~this.offeredFeatures();
        if (unknown !== 0n) throw errnoError('EINVAL', `features 0x${unknown.toString(16)} were not offered`);
        this.ackedFeatures = value;
        // Without protocol features rings are enabled from the start (vhost-user.rst "Ring states").
        if ((value & bit(VHOST_USER_F_PROTOCOL_FEATURES)) === 0n)
          for (const r of this.rings) r.setEnabled(true);
        this.device.setFeatures?.(value);
        return undefined;
      }
      case Request.GET_PROTOCOL_FEATURES:
        return encodeU64(BACKEND_PROTOCOL_FEATURES);
      case Request.SET_PROTOCOL_FEATURES: {
        const value = (m as Extract<Message, { kind: 'u64' }>).value;
        const unknown = value & ~BACKEND_PROTOCOL_FEATURES;
        if (unknown !== 0n)
          throw errnoError('EINVAL', `protocol features 0x${unknown.toString(16)} were not offered`);
        this.ackedProtocol = value;
        return undefined;
      }
      case Request.SET_OWNER:
        return undefined;
      case Request.RESET_OWNER:
      case Request.RESET_DEVICE:
        await this.resetState();
        return undefined;
      case Request.GET_QUEUE_NUM:
        return encodeU64(BigInt(this.rings.length));
      case Request.SET_MEM_TABLE:
        await this.setMemTable(m as Extract<Message, { kind: 'memTable' }>);
        return undefined;
      case Request.SET_VRING_NUM: {
        const s = m as Extract<Message, { kind: 'vringState' }>;
        const ring = this.ring(s.index);
        if (ring.started) throw errnoError('EBUSY', `queue ${s.index} is running`);
        checkRingSize(s.num, this.device.queueMaxSizes[s.index] ?? 0, this.packed);
        ring.size = s.num;
        ring.invalidate();
        return undefined;
      }
      case Request.SET_VRING_BASE: {
        const s = m as Extract<Message, { kind: 'vringState' }>;
        const ring = this.ring(s.index);
        if (ring.started) throw errnoError('EBUSY', `queue ${s.index} is running`);
        // Packed: both positions and wrap counters (checked against the size when the ring is built).
        if (s.num > 0xffff && !this.packed)
          throw errnoError('EINVAL', `ring base ${s.num} is not a 16-bit index`);
        ring.invalidate();
        ring.base = s.num;
        return undefined;
      }
      case Request.SET_VRING_ADDR: {
        const { addr } = m as Extract<Message, { kind: 'vringAddr' }>;
        const ring = this.ring(addr.index);
        if (ring.size === 0)
          throw errnoError('EINVAL', `queue ${addr.index}: SET_VRING_ADDR before SET_VRING_NUM`);
        // Check now, so a bad address is refused on this message, not at the first kick.
        translateRingAreas((va, len) => this.vaToGpa(va, len), addr, ring.size, this.packed);
        // A running ring may be moved (e.g. logging turned on): its requests in flight finish first.
        await this.quiesce([ring], () => {
          ring.invalidate();
          ring.addr = addr;
        });
        return undefined;
      }
      case Request.GET_VRING_BASE: {
        const s = m as Extract<Message, { kind: 'vringState' }>;
        const ring = this.ring(s.index);
        const base = await ring.stop();
        return encodeVringState(s.index, base);
      }
      case Request.SET_VRING_KICK:
      case Request.SET_VRING_CALL:
      case Request.SET_VRING_ERR: {
        const f = m as Extract<Message, { kind: 'vringFd' }>;
        const ring = this.ring(f.index);
        if (f.fd !== null && !isEventFd(f.fd))
          throw errnoError('EINVAL', `fd for queue ${f.index} is not an eventfd`);
        if (m.request === Request.SET_VRING_KICK) ring.setKick(f.fd);
        else if (m.request === Request.SET_VRING_CALL) ring.setCall(f.fd);
        else ring.setErr(f.fd);
        return undefined;
      }
      case Request.SET_VRING_ENABLE: {
        const s = m as Extract<Message, { kind: 'vringState' }>;
        if (s.num > 1) throw errnoError('EINVAL', `SET_VRING_ENABLE value ${s.num} is not 0 or 1`);
        this.ring(s.index).setEnabled(s.num === 1);
        return undefined;
      }
      case Request.GET_CONFIG: {
        const c = m as Extract<Message, { kind: 'config' }>;
        if (c.offset + c.size > MAX_CONFIG_SIZE)
          throw errnoError('EINVAL', `config [${c.offset}, +${c.size}) is out of range`);
        const out = new Uint8Array(c.size);
        this.device.readConfig(c.offset, out);
        return encodeConfig(c.offset, c.flags, out);
      }
      case Request.SET_CONFIG: {
        const c = m as Extract<Message, { kind: 'config' }>;
        if (this.device.writeConfig === undefined) {
          // Like a write to read-only config space on hardware: dropped, not fatal.
          this.log(
            `vhost-user: SET_CONFIG [${c.offset}, +${c.size}) ignored: the device's config space is read-only`,
          );
          return undefined;
        }
        if (c.offset + c.size > this.device.configSize)
          throw errnoError('EINVAL', `config write [${c.offset}, +${c.size}) is out of range`);
        this.device.writeConfig(c.offset, c.data);
        return undefined;
      }
      case Request.GET_INFLIGHT_FD: {
        const { inflight } = m as Extract<Message, { kind: 'inflight' }>;
        if (!this.protocolAcked(ProtocolFeature.INFLIGHT_SHMFD))
          throw errnoError('EINVAL', 'INFLIGHT_SHMFD was not negotiated');
        checkInflightShape(inflight.numQueues, inflight.queueSize, this.rings.length);
        const { fd, mmapSize } = createInflightFd(inflight.numQueues, inflight.queueSize);
        const payload = encodeInflight({
          mmapSize: BigInt(mmapSize),
          mmapOffset: 0n,
          numQueues: inflight.numQueues,
          queueSize: inflight.queueSize,
          size: inflight.size,
        });
        return { payload, fds: [fd] };
      }
      case Request.SET_INFLIGHT_FD:
        await this.setInflight(m as Extract<Message, { kind: 'inflight' }>);
        return undefined;
      default:
        throw new VhostUserProtocolError(`${requestName(m.request)}: not handled`);
    }
  }

  private offeredFeatures(): bigint {
    return this.device.features | bit(VHOST_USER_F_PROTOCOL_FEATURES);
  }

  private async setMemTable(m: Extract<Message, { kind: 'memTable' }>): Promise<void> {
    // No request may touch the old mapping once it is gone: rings are held and drained first.
    await this.quiesce(this.rings, () => {
      // The frontend left while we drained: teardown releases the table, do not map a new one behind it.
      if (this.ended) {
        for (const fd of m.fds) close(fd);
        return;
      }
      // Takes the fds, throws with nothing mapped.
      const table = MemoryTable.map(m.regions, m.fds, { requireSealed: this.options.requireSealed ?? false });
      for (const r of this.rings) r.invalidate();
      this.table?.release();
      this.table = table;
    });
  }

  private async setInflight(m: Extract<Message, { kind: 'inflight' }>): Promise<void> {
    const fd = m.fd as number;
    let owned = true; // until InflightRegion.map takes it
    try {
      if (!this.protocolAcked(ProtocolFeature.INFLIGHT_SHMFD))
        throw errnoError('EINVAL', 'INFLIGHT_SHMFD was not negotiated');
      // Rings write their records while they run: they are held and drained before the region changes.
      await this.quiesce(this.rings, () => {
        if (this.ended) return;
        owned = false;
        // Takes the fd, throws with nothing mapped.
        const region = InflightRegion.map(fd, m.inflight, this.rings.length, {
          requireSealed: this.options.requireSealed ?? false,
        });
        for (const r of this.rings) r.invalidate();
        this.releaseInflight();
        this.inflightRegion = region;
      });
    } finally {
      if (owned) close(fd);
    }
  }

  private releaseInflight(): void {
    this.inflightRegion?.release();
    this.inflightRegion = null;
    this.inflightViews = [];
  }

  /** Holds `rings` (kicks stay pending), waits for their requests in flight, runs `change`, resumes them. */
  private async quiesce(rings: readonly Vring[], change: () => void): Promise<void> {
    for (const r of rings) r.suspended = true;
    try {
      await Promise.all(rings.map((r) => r.drain()));
      change();
    } finally {
      for (const r of rings) r.suspended = false;
      for (const r of rings) r.process();
    }
  }

  private async resetState(): Promise<void> {
    for (const r of this.rings) {
      r.started = false;
      r.pendingKick = false;
    }
    await Promise.all(this.rings.map((r) => r.drain()));
    for (const r of this.rings) {
      r.dispose();
      r.size = 0;
      r.addr = null;
      r.base = 0;
      r.enabled = false;
      r.broken = false;
    }
    this.table?.release();
    this.table = null;
    this.releaseInflight();
    this.ackedFeatures = 0n;
    this.ackedProtocol = 0n;
    await this.device.reset?.();
  }

  private async teardown(reason: string | null): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.endReason = reason;
    for (const raw of this.queued.splice(0)) for (const fd of raw.fds) close(fd);
    if (reason !== null) this.log(`vhost-user: frontend session closed: ${reason}`);
    try {
      await this.resetState();
    } catch (error) {
      this.log(`vhost-user: cleanup after disconnect failed: ${(error as Error).message}`);
    }
    this.options.onEnd?.(this.endReason);
    this.resolveDone(this.endReason);
  }
}
