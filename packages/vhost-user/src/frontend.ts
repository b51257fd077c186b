/**
 * The frontend side: what a VMM (rxvmm-demo --vhost-user) uses to hand a
 * device's queues to a back-end. One request at a time; replies are matched in
 * order. With REPLY_ACK negotiated every request without its own reply asks for
 * an ack, so a refusal surfaces as a rejected Promise at the right call.
 */
import { errnoError } from '@rxvmm/errno';
import { close, setNonBlocking, unixConnect, unixSocket } from '@rxvmm/sys';
import { hasFeature, VirtioFeature } from '@rxvmm/virtio';
import { MessageChannel, type RawMessage } from './channel.js';
import {
  decodeInflight,
  decodeU64,
  encodeConfig,
  encodeInflight,
  encodeMemTable,
  encodeMessage,
  encodeU64,
  encodeVringAddr,
  encodeVringState,
  type MemoryRegionDesc,
} from './message.js';
import {
  bit,
  CONFIG_HEADER_SIZE,
  FLAG_NEED_REPLY,
  ProtocolFeature,
  Request,
  requestName,
  VERSION,
  VHOST_USER_F_PROTOCOL_FEATURES,
  VRING_NOFD_MASK,
} from './protocol.js';

/** A guest RAM region as the frontend maps it. */
export interface FrontendMemoryRegion {
  guestPhysAddr: bigint;
  size: bigint;
  /** Where the frontend mapped it (its own virtual address). */
  userspaceAddr: bigint;
  /** memfd (or other shareable fd) backing the region. */
  fd: number;
  /** Offset of the region inside the fd. */
  fdOffset: bigint;
}

/**
 * Memory table entries for a VMM's guest RAM regions (e.g. @rxvmm/kvm
 * `MemoryRegion`s, which carry `fd`/`fdOffset` but no host address). The
 * "frontend virtual address" of each region is its guest-physical address:
 * vhost-user only needs VAs that are consistent between the memory table and
 * the ring addresses, so pass the rings' guest-physical addresses as
 * `descUserAddr`/`availUserAddr`/`usedUserAddr`.
 */
export function identityMappedRegions(
  regions: readonly { guestPhysAddr: bigint; size: number | bigint; fd: number; fdOffset: number | bigint }[],
): FrontendMemoryRegion[] {
  return regions.map((r) => {
    if (r.fd < 0)
      throw errnoError('EINVAL', `region at 0x${r.guestPhysAddr.toString(16)} has no fd to share`);
    return {
      guestPhysAddr: r.guestPhysAddr,
      size: BigInt(r.size),
      userspaceAddr: r.guestPhysAddr,
      fd: r.fd,
      fdOffset: BigInt(r.fdOffset),
    };
  });
}

/** One queue to hand over: frontend virtual addresses of the ring areas, and the notifier fds. */
export interface FrontendQueue {
  size: number;
  /** Split: descriptor table, available ring, used ring. Packed: descriptor ring, driver and device event suppression. */
  descUserAddr: bigint;
  availUserAddr: bigint;
  usedUserAddr: bigint;
  /**
   * SET_VRING_BASE: the next avail index (split; default 0), or for packed rings
   * bits 0-14 avail position, 15 avail wrap counter, 16-30 used position, 31 used
   * wrap counter (default {@link PACKED_RING_START}).
   */
  base?: number;
  /** The guest's doorbell (e.g. the ioeventfd's eventfd); null = no fd. */
  kickFd: number | null;
  /** Signalled by the back-end (e.g. the irqfd's eventfd); null = no fd. */
  callFd: number | null;
}

/** A fresh packed ring's VRING_BASE: both positions 0, both wrap counters 1. */
export const PACKED_RING_START = 0x8000_8000;

/** An inflight region as the frontend keeps it between back-ends (GET_INFLIGHT_FD, SET_INFLIGHT_FD). */
export interface FrontendInflight {
  /** The region's fd (a memfd the back-end made); the frontend keeps it open. */
  fd: number;
  mmapSize: bigint;
  mmapOffset: bigint;
  numQueues: number;
  queueSize: number;
}

interface Pending {
  request: number;
  resolve(payload: Uint8Array, fds: number[]): void;
  reject(error: Error): void;
}

/** The frontend side of vhost-user, what a VMM uses to hand its queues to a back-end: each message as a method, and `start()` for QEMU's whole sequence. Requests are serialized; with REPLY_ACK each waits for its ack. */
export class VhostUserFrontend {
  private readonly channel: MessageChannel;
  private readonly pending: Pending[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  private closeReason: string | null = null;
  private closedFlag = false;
  /** Protocol features both sides agreed on. */
  protocolFeatures = 0n;
  /** The inflight region `start()` set up (a new one: the caller closes its fd when the device goes). */
  inflight: FrontendInflight | null = null;
  /** Resolves when the connection is gone (with the reason, null for an orderly close). */
  readonly whenClosed: Promise<string | null>;
  private resolveClosed!: (reason: string | null) => void;

  private constructor(fd: number) {
    this.whenClosed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    this.channel = new MessageChannel(
      fd,
      {
        onMessage: (m) => this.onReply(m),
        onClose: (reason) => {
          this.closedFlag = true;
          this.closeReason = reason;
          this.resolveClosed(reason);
          for (const p of this.pending.splice(0))
            p.reject(
              errnoError(
                'ENOTCONN',
                `back-end closed the connection during ${requestName(p.request)}${reason ? `: ${reason}` : ''}`,
              ),
            );
        },
      },
      true,
    );
  }

  /** Connects to a back-end listening on `path`. */
  static connect(path: string): VhostUserFrontend {
    const fd = unixSocket(false);
    try {
      unixConnect(fd, path);
      setNonBlocking(fd, true);
    } catch (error) {
      close(fd);
      throw error;
    }
    return new VhostUserFrontend(fd);
  }

  /** Wraps an already connected socket (e.g. one end of a socketpair). */
  static fromFd(fd: number): VhostUserFrontend {
    setNonBlocking(fd, true);
    return new VhostUserFrontend(fd);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  get disconnectReason(): string | null {
    return this.closeReason;
  }

  /** Closes the connection (the back-end ends the session and releases everything). */
  close(): void {
    this.channel.close(null);
  }

  /** GET_FEATURES: the virtio features the back-end offers, `VHOST_USER_F_PROTOCOL_FEATURES` included. */
  getFeatures(): Promise<bigint> {
    return this.call(Request.GET_FEATURES, undefined, [], true).then(decodeU64);
  }

  /** SET_FEATURES: the features the driver accepted. */
  async setFeatures(features: bigint): Promise<void> {
    await this.call(Request.SET_FEATURES, encodeU64(features));
  }

  /** GET_PROTOCOL_FEATURES. */
  getProtocolFeatures(): Promise<bigint> {
    return this.call(Request.GET_PROTOCOL_FEATURES, undefined, [], true).then(decodeU64);
  }

  /** SET_PROTOCOL_FEATURES (REPLY_ACK takes effect for the next request). */
  async setProtocolFeatures(features: bigint): Promise<void> {
    await this.call(Request.SET_PROTOCOL_FEATURES, encodeU64(features));
    this.protocolFeatures = features;
  }

  /** SET_OWNER: this connection owns the back-end's device. */
  async setOwner(): Promise<void> {
    await this.call(Request.SET_OWNER);
  }

  /** RESET_OWNER: the back-end stops every ring and releases the memory table. */
  async resetOwner(): Promise<void> {
    await this.call(Request.RESET_OWNER);
  }

  /** GET_QUEUE_NUM (needs the MQ protocol feature): how many queues the back-end has. */
  getQueueNum(): Promise<number> {
    return this.call(Request.GET_QUEUE_NUM, undefined, [], true).then((p) => Number(decodeU64(p)));
  }

  /** GET_CONFIG: `size` bytes of config space from `offset`. */
  async getConfig(offset: number, size: number): Promise<Uint8Array> {
    const reply = await this.call(
      Request.GET_CONFIG,
      encodeConfig(offset, 0, new Uint8Array(size)),
      [],
      true,
    );
    if (reply.length !== CONFIG_HEADER_SIZE + size)
      throw errnoError('EPROTO', `GET_CONFIG reply of ${reply.length} bytes`);
    return reply.slice(CONFIG_HEADER_SIZE);
  }

  /** SET_CONFIG: a driver write into the device's configuration space. */
  async setConfig(offset: number, data: Uint8Array): Promise<void> {
    await this.call(Request.SET_CONFIG, encodeConfig(offset, 0, data));
  }

  /** SET_MEM_TABLE: one fd per region (the fds stay open on this side). */
  async setMemTable(regions: readonly FrontendMemoryRegion[]): Promise<void> {
    const descs: MemoryRegionDesc[] = regions.map((r) => ({
      guestPhysAddr: r.guestPhysAddr,
      memorySize: r.size,
      userspaceAddr: r.userspaceAddr,
      mmapOffset: r.fdOffset,
    }));
    await this.call(
      Request.SET_MEM_TABLE,
      encodeMemTable(descs),
      regions.map((r) => r.fd),
    );
  }

  /** SET_VRING_NUM: the ring's size. */
  async setVringNum(index: number, num: number): Promise<void> {
    await this.call(Request.SET_VRING_NUM, encodeVringState(index, num));
  }

  /** SET_VRING_BASE: where the ring starts (next avail index; for packed rings with the wrap counter in bit 15). */
  async setVringBase(index: number, base: number): Promise<void> {
    await this.call(Request.SET_VRING_BASE, encodeVringState(index, base));
  }

  /** GET_VRING_BASE: stops the ring on the back-end; returns its next avail index. */
  async getVringBase(index: number): Promise<number> {
    const reply = await this.call(Request.GET_VRING_BASE, encodeVringState(index, 0), [], true);
    if (reply.length !== 8) throw errnoError('EPROTO', `GET_VRING_BASE reply of ${reply.length} bytes`);
    return new DataView(reply.buffer, reply.byteOffset, 8).getUint32(4, true);
  }

  /** SET_VRING_ADDR: the ring's areas as frontend virtual addresses. */
  async setVringAddr(
    index: number,
    q: Pick<FrontendQueue, 'descUserAddr' | 'availUserAddr' | 'usedUserAddr'>,
  ): Promise<void> {
    await this.call(
      Request.SET_VRING_ADDR,
      encodeVringAddr({
        index,
        flags: 0,
        descUserAddr: q.descUserAddr,
        usedUserAddr: q.usedUserAddr,
        availUserAddr: q.availUserAddr,
        logGuestAddr: 0n,
      }),
    );
  }

  /** SET_VRING_KICK: the kick eventfd (`null`: no fd, the ring starts at once). */
  async setVringKick(index: number, fd: number | null): Promise<void> {
    await this.vringFd(Request.SET_VRING_KICK, index, fd);
  }

  /** SET_VRING_CALL: the call eventfd the back-end signals for used buffers (`null`: none). */
  async setVringCall(index: number, fd: number | null): Promise<void> {
    await this.vringFd(Request.SET_VRING_CALL, index, fd);
  }

  /** SET_VRING_ERR: the eventfd the back-end signals when the ring fails (`null`: none). */
  async setVringErr(index: number, fd: number | null): Promise<void> {
    await this.vringFd(Request.SET_VRING_ERR, index, fd);
  }

  /** SET_VRING_ENABLE: enable or pause the ring (with protocol features). */
  async setVringEnable(index: number, enable: boolean): Promise<void> {
    await this.call(Request.SET_VRING_ENABLE, encodeVringState(index, enable ? 1 : 0));
  }

  /**
   * GET_INFLIGHT_FD (INFLIGHT_SHMFD negotiated): the back-end makes a region for
   * `numQueues` queues of up to `queueSize` entries. The caller owns the fd and
   * hands the region to every back-end of this device with {@link setInflightFd}.
   */
  async getInflightFd(numQueues: number, queueSize: number): Promise<FrontendInflight> {
    const fds: number[] = [];
    const reply = await this.call(
      Request.GET_INFLIGHT_FD,
      encodeInflight({ mmapSize: 0n, mmapOffset: 0n, numQueues, queueSize }),
      [],
      true,
      fds,
    );
    const d = decodeInflight(reply);
    if (fds.length !== 1) {
      for (const fd of fds) close(fd);
      throw errnoError('EPROTO', `GET_INFLIGHT_FD reply with ${fds.length} fds`);
    }
    return { fd: fds[0] as number, mmapSize: d.mmapSize, mmapOffset: d.mmapOffset, numQueues, queueSize };
  }

  /** SET_INFLIGHT_FD: the region (its fd stays open on this side). */
  async setInflightFd(inflight: FrontendInflight): Promise<void> {
    await this.call(Request.SET_INFLIGHT_FD, encodeInflight(inflight), [inflight.fd]);
  }

  /**
   * The whole start sequence QEMU performs for a vhost-user device: features
   * (device ∩ `wantFeatures`, plus protocol features), owner, memory table, and
   * each queue's size/base/addresses/call/kick/enable. Returns the acked virtio features.
   */
  async start(setup: {
    wantFeatures: bigint;
    memory: readonly FrontendMemoryRegion[];
    queues: readonly FrontendQueue[];
    /**
     * Inflight I/O tracking, as QEMU's vhost-user-blk does it: `'new'` asks the
     * back-end for a region (GET_INFLIGHT_FD), a region from an earlier back-end
     * is handed back as it is; either way SET_INFLIGHT_FD precedes the rings.
     * Ignored when the back-end does not offer INFLIGHT_SHMFD.
     */
    inflight?: 'new' | FrontendInflight;
  }): Promise<bigint> {
    const offered = await this.getFeatures();
    let acked = offered & setup.wantFeatures;
    if (offered & bit(VHOST_USER_F_PROTOCOL_FEATURES)) {
      acked |= bit(VHOST_USER_F_PROTOCOL_FEATURES);
      const proto = await this.getProtocolFeatures();
      const want =
        bit(ProtocolFeature.REPLY_ACK) |
        bit(ProtocolFeature.CONFIG) |
        bit(ProtocolFeature.MQ) |
        (setup.inflight !== undefined ? bit(ProtocolFeature.INFLIGHT_SHMFD) : 0n);
      await this.setProtocolFeatures(proto & want);
    }
    await this.setOwner();
    if (this.protocolFeatures & bit(ProtocolFeature.MQ)) {
      const n = await this.getQueueNum();
      if (n < setup.queues.length)
        throw errnoError('EINVAL', `back-end has ${n} queues, ${setup.queues.length} needed`);
    }
    if (setup.inflight !== undefined && this.protocolFeatures & bit(ProtocolFeature.INFLIGHT_SHMFD)) {
      const queueSize = Math.max(...setup.queues.map((q) => q.size));
      const region =
        setup.inflight === 'new' ? await this.getInflightFd(setup.queues.length, queueSize) : setup.inflight;
      this.inflight = region;
      await this.setInflightFd(region);
    }
    await this.setFeatures(acked);
    await this.setMemTable(setup.memory);
    const packed = hasFeature(acked, VirtioFeature.RING_PACKED);
    for (const [i, q] of setup.queues.entries()) {
      await this.setVringNum(i, q.size);
      await this.setVringBase(i, q.base ?? (packed ? PACKED_RING_START : 0));
      await this.setVringAddr(i, q);
      await this.setVringCall(i, q.callFd);
      await this.setVringKick(i, q.kickFd);
      if (acked & bit(VHOST_USER_F_PROTOCOL_FEATURES)) await this.setVringEnable(i, true);
    }
    return acked;
  }

  private vringFd(request: number, index: number, fd: number | null): Promise<Uint8Array> {
    const value = BigInt(index) | (fd === null ? VRING_NOFD_MASK : 0n);
    return this.call(request, encodeU64(value), fd === null ? [] : [fd]);
  }

  /** Sends one request (serialized after the previous one) and resolves with the reply payload. */
  private call(
    request: number,
    payload?: Uint8Array,
    fds: readonly number[] = [],
    hasReply = false,
    /** Receives the fds that came with the reply (else they are closed). */
    replyFds?: number[],
  ): Promise<Uint8Array> {
    const run = async (): Promise<Uint8Array> => {
      if (this.closedFlag)
        throw errnoError(
          'ENOTCONN',
          `${requestName(request)}: not connected${this.closeReason ? ` (${this.closeReason})` : ''}`,
        );
      const ack =
        !hasReply &&
        (this.protocolFeatures & bit(ProtocolFeature.REPLY_ACK)) !== 0n &&
        request !== Request.SET_PROTOCOL_FEATURES;
      const flags = VERSION | (ack ? FLAG_NEED_REPLY : 0);
      const reply =
        hasReply || ack
          ? new Promise<Uint8Array>((resolve, reject) =>
              this.pending.push({
                request,
                resolve: (p, got) => {
                  if (replyFds) replyFds.push(...got);
                  else for (const fd of got) close(fd);
                  resolve(p);
                },
                reject,
              }),
            )
          : Promise.resolve(new Uint8Array(0));
      // A failed send rejects `reply` too (the channel closes): handled here, reported by the throw below.
      reply.catch(() => undefined);
      if (!this.channel.send(encodeMessage(request, flags, payload), fds)) {
        throw errnoError(
          'ENOTCONN',
          `${requestName(request)}: send failed${this.closeReason ? ` (${this.closeReason})` : ''}`,
        );
      }
      const result = await reply;
      if (ack) {
        const status = decodeU64(result);
        if (status !== 0n)
          throw errnoError('EINVAL', `back-end refused ${requestName(request)} (status ${status})`);
      }
      return result;
    };
    const next = this.chain.then(run, run);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private onReply(message: RawMessage): void {
    const p = this.pending.shift();
    if (p === undefined) {
      for (const fd of message.fds) close(fd);
      this.channel.close(`unexpected reply ${requestName(message.header.request)}`);
      return;
    }
    if (message.header.request !== p.request) {
      for (const fd of message.fds) close(fd);
      p.reject(
        errnoError(
          'EPROTO',
          `reply to ${requestName(message.header.request)} while waiting for ${requestName(p.request)}`,
        ),
      );
      this.channel.close('reply out of order');
      return;
    }
    p.resolve(message.payload, message.fds); // the call closes fds nobody asked for
  }
}
