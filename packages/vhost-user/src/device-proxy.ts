/**
 * A virtio device model whose queues are served by a vhost-user back-end: what
 * a VMM puts behind its transport (e.g. @rxvmm/virtio-mmio's
 * VirtioMmioTransport) for `--vhost-user SOCKET`. It is a `VirtioDevice` of
 * `@rxvmm/virtio`'s transport-independent contract, so any transport hosts it.
 *
 * - Before the driver starts: features and config space come from the back-end
 *   (GET_FEATURES, GET_CONFIG), fetched once by `connect()`.
 * - At DRIVER_OK (`activate`): SET_FEATURES, SET_MEM_TABLE and every ready
 *   queue's size/base/addresses/call/kick, then SET_VRING_ENABLE.
 * - Kicks: pass the ioeventfd's eventfd as `kickFd` and the guest's doorbell
 *   write goes from KVM straight to the back-end. Without one, the proxy makes
 *   an eventfd and `queueNotify()` (the VMM's MMIO exit path) writes it.
 * - Interrupts: pass the irqfd's eventfd as `callFd` and the back-end
 *   interrupts the guest through KVM. Without one, the proxy makes an eventfd
 *   and turns its signals into `activation.signalUsedBuffer(i)`.
 * - Reset: GET_VRING_BASE on every started queue (stops it and waits for its
 *   requests in flight) before the driver may reuse the memory.
 */

import { errnoError } from '@rxvmm/errno';
import { EventFd } from '@rxvmm/eventfd';
import { write8 } from '@rxvmm/sys';
import type { VirtioActivation, VirtioDevice } from '@rxvmm/virtio';
import type { Subscription } from 'rxjs';
import { type FrontendMemoryRegion, PACKED_RING_START, VhostUserFrontend } from './frontend.js';
import { bit, ProtocolFeature, VHOST_USER_F_PROTOCOL_FEATURES } from './protocol.js';

/**
 * The part of a `VirtioActivation` the proxy uses (it never changes the config
 * space on its own, so `signalConfigChange` is not needed): a transport passes
 * its whole activation, a VMM relaying one from another thread passes these.
 */
export type ProxyActivation = Pick<
  VirtioActivation,
  'features' | 'queues' | 'signalUsedBuffer' | 'needsReset'
>;

/** Options of `VhostUserDeviceProxy.connect()`. */
export interface DeviceProxyOptions {
  /** Virtio device ID (2 = block). */
  deviceType: number;
  /** Guest RAM for SET_MEM_TABLE; ring addresses are passed as guest-physical ones, so use identityMappedRegions(). */
  memory: readonly FrontendMemoryRegion[];
  /** QueueNumMax per queue; its length is the number of queues (the back-end must have at least that many). */
  queueMaxSizes: readonly number[];
  /** Per queue: the ioeventfd's eventfd (kick) and the irqfd's eventfd (call), when the VMM has them. */
  notifiers?: readonly { kickFd?: number; callFd?: number }[];
  /** Config space bytes fetched with GET_CONFIG (default 60: sizeof(struct virtio_blk_config)). */
  configSize?: number;
}

/** A `VirtioDevice` whose queues a vhost-user back-end serves: a VMM's transport hosts it, and at DRIVER_OK it hands the queues over (SET_FEATURES, SET_MEM_TABLE, each ring's NUM/BASE/ADDR/CALL/KICK/ENABLE). */
export class VhostUserDeviceProxy implements VirtioDevice {
  readonly deviceType: number;
  readonly features: bigint;
  readonly queueMaxSizes: readonly number[];
  private config: Uint8Array;
  private started: number[] = [];
  private readonly owned: EventFd[] = [];
  private readonly subs: Subscription[] = [];
  private readonly kicks: (EventFd | null)[] = [];
  /** The back-end offered VHOST_USER_F_PROTOCOL_FEATURES (so rings wait for SET_VRING_ENABLE). */
  private readonly protocolBit: boolean;

  private constructor(
    readonly frontend: VhostUserFrontend,
    private readonly options: DeviceProxyOptions,
    features: bigint,
    config: Uint8Array,
  ) {
    this.deviceType = options.deviceType;
    this.queueMaxSizes = options.queueMaxSizes;
    // The driver negotiates device features only; the vhost-user bit is the proxy's business.
    this.features = features & ~bit(VHOST_USER_F_PROTOCOL_FEATURES);
    this.protocolBit = (features & bit(VHOST_USER_F_PROTOCOL_FEATURES)) !== 0n;
    this.config = config;
  }

  /** Connects, negotiates protocol features, takes ownership, reads features and config space. */
  static async connect(
    socketPath: string | VhostUserFrontend,
    options: DeviceProxyOptions,
  ): Promise<VhostUserDeviceProxy> {
    const fe = typeof socketPath === 'string' ? VhostUserFrontend.connect(socketPath) : socketPath;
    try {
      const features = await fe.getFeatures();
      let config: Uint8Array = new Uint8Array(0);
      if (features & bit(VHOST_USER_F_PROTOCOL_FEATURES)) {
        const offered = await fe.getProtocolFeatures();
        const want = bit(ProtocolFeature.REPLY_ACK) | bit(ProtocolFeature.CONFIG) | bit(ProtocolFeature.MQ);
        await fe.setProtocolFeatures(offered & want);
      }
      await fe.setOwner();
      if (fe.protocolFeatures & bit(ProtocolFeature.MQ)) {
        const n = await fe.getQueueNum();
        if (n < options.queueMaxSizes.length)
          throw errnoError(
            'EINVAL',
            `back-end has ${n} queues, the device needs ${options.queueMaxSizes.length}`,
          );
      }
      if (fe.protocolFeatures & bit(ProtocolFeature.CONFIG))
        config = await fe.getConfig(0, options.configSize ?? 60);
      return new VhostUserDeviceProxy(fe, options, features, config);
    } catch (error) {
      fe.close();
      throw error;
    }
  }

  readConfig(offset: number, data: Uint8Array): void {
    data.fill(0);
    if (offset < this.config.length) data.set(this.config.subarray(offset, offset + data.length));
  }

  writeConfig(offset: number, data: Uint8Array): void {
    // Forwarded; the local copy follows so that reads see the write.
    void this.frontend.setConfig(offset, data).catch(() => undefined);
    if (offset + data.length <= this.config.length) this.config.set(data, offset);
  }

  /** DRIVER_OK: hands every ready queue to the back-end. */
  async activate(activation: ProxyActivation): Promise<void> {
    const fe = this.frontend;
    await fe.setFeatures(activation.features | (this.protocolBit ? bit(VHOST_USER_F_PROTOCOL_FEATURES) : 0n));
    await fe.setMemTable(this.options.memory);
    for (const q of activation.queues) {
      if (!q.ready) continue;
      const given = this.options.notifiers?.[q.index] ?? {};
      await fe.setVringNum(q.index, q.size);
      await fe.setVringBase(q.index, q.packed ? PACKED_RING_START : 0); // a fresh ring
      await fe.setVringAddr(q.index, {
        descUserAddr: q.descTable,
        availUserAddr: q.driverArea,
        usedUserAddr: q.deviceArea,
      });
      let callFd = given.callFd;
      if (callFd === undefined) {
        const call = new EventFd();
        this.owned.push(call);
        this.subs.push(call.signals$.subscribe(() => activation.signalUsedBuffer(q.index)));
        callFd = call.fd;
      }
      await fe.setVringCall(q.index, callFd);
      let kickFd = given.kickFd;
      if (kickFd === undefined) {
        const kick = new EventFd();
        this.owned.push(kick);
        this.kicks[q.index] = kick;
        kickFd = kick.fd;
      }
      await fe.setVringKick(q.index, kickFd);
      if (this.protocolBit) await fe.setVringEnable(q.index, true);
      this.started.push(q.index);
      // One injected kick (vhost-user.rst: front-ends should) so a back-end that starts rings on
      // their first kick starts now, and nothing made available early waits.
      write8(kickFd, 1n);
    }
    // Back-end refusals or a lost connection after this point surface as NEEDS_RESET.
    void this.frontend.whenClosed.then((reason) => {
      if (!this.closing)
        activation.needsReset(
          errnoError('ENOTCONN', `vhost-user back-end gone${reason ? `: ${reason}` : ''}`),
        );
    });
  }

  /** The VMM's MMIO/PIO exit path for QueueNotify (when no ioeventfd absorbs it). */
  queueNotify(queueIndex: number): void {
    this.kicks[queueIndex]?.write(1n);
  }

  /** Status 0: stops every started queue on the back-end (waiting for its requests) and drops local notifiers. */
  async reset(): Promise<void> {
    const started = this.started.splice(0);
    if (!this.frontend.closed) for (const i of started) await this.frontend.getVringBase(i);
    for (const s of this.subs.splice(0)) s.unsubscribe();
    for (const e of this.owned.splice(0)) e.close();
    this.kicks.length = 0;
  }

  private closing = false;

  /** Resets and disconnects. */
  async close(): Promise<void> {
    this.closing = true;
    await this.reset().catch(() => undefined);
    this.frontend.close();
  }
}
