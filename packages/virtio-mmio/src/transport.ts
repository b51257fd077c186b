/**
 * The virtio-mmio (version 2) register file and device status state machine
 * (virtio 1.2 sections 2.1, 3.1 and 4.2). A VMM forwards guest MMIO accesses
 * inside the device's window to `read`/`write` (or `handleMmio`), wires
 * `interrupt$` to an irqfd or KVM_IRQ_LINE, and optionally feeds ioeventfd
 * signals to `notifyQueue`.
 */
import { debug } from '@rxvmm/errno';
import {
  type ActivatedQueue,
  DeviceStatus,
  featureBit,
  type GuestRangeCheck,
  hasFeature,
  queueLayoutError,
  type VirtioActivation,
  type VirtioActivationInfo,
  type VirtioDevice,
  VirtioFeature,
} from '@rxvmm/virtio';
import type { Observable } from 'rxjs';
import {
  InterruptBit,
  MmioRegister,
  VIRTIO_MMIO_CONFIG_OFFSET,
  VIRTIO_MMIO_MAGIC,
  VIRTIO_MMIO_VERSION,
} from './constants.js';
import { Emitter } from './emitter.js';
import {
  bad,
  loadTransportState,
  TRANSPORT_STATE_VERSION,
  type VirtioMmioTransportState,
} from './transport-state.js';

const log = debug('rxvmm:virtio-mmio');
const U32 = 0xffff_ffffn;

/** Features this transport cannot honour, masked out of what the device offers. */
const TRANSPORT_UNSUPPORTED = featureBit(VirtioFeature.RING_RESET) | featureBit(VirtioFeature.SR_IOV);

/** Options of `new VirtioMmioTransport(device, options)`. */
export interface VirtioMmioTransportOptions {
  /**
   * Where guest memory is: at DRIVER_OK every ready queue's areas must pass this
   * check, otherwise the device goes to NEEDS_RESET instead of activating.
   */
  isValidRange?: GuestRangeCheck;
  /**
   * Queues are processed elsewhere and signal the guest without this transport
   * (a vhost-user back-end's call eventfd wired to an irqfd): report the
   * used-buffer bit in InterruptStatus whenever DRIVER_OK is set, so the
   * guest's handler always scans its rings.
   */
  alwaysReportUsedBuffer?: boolean;
  /** Called for every interrupt raised (same as subscribing to `interrupt$`). */
  onInterrupt?: (event: VirtioInterrupt) => void;
  /** Called for every ignored/invalid access or device error (same as `warnings$`). */
  onWarning?: (message: string) => void;
}

/** One interrupt the transport raised. */
export interface VirtioInterrupt {
  /** The bits newly raised (InterruptBit). */
  bits: number;
  /** InterruptStatus after raising. */
  status: number;
}

/** Why the device entered DEVICE_NEEDS_RESET. */
export interface NeedsResetEvent {
  reason: string;
  error: unknown;
}

/** The transport's events by name, for `on(name, listener)` (the same events as the `x$` streams). */
export interface VirtioMmioTransportEvents {
  interrupt: VirtioInterrupt;
  irqLevel: boolean;
  activated: VirtioActivationInfo;
  reset: undefined;
  notify: number;
  needsReset: NeedsResetEvent;
  warning: string;
}

interface QueueRegisters {
  size: number;
  ready: boolean;
  descTable: bigint;
  driverArea: bigint;
  deviceArea: bigint;
}

function freshQueue(maxSize: number): QueueRegisters {
  // QueueNum starts at QueueNumMax so drivers that skip writing it still get a sane size.
  return { size: maxSize, ready: false, descTable: 0n, driverArea: 0n, deviceArea: 0n };
}

function setLow(v: bigint, low: number): bigint {
  return (v & (U32 << 32n)) | BigInt(low >>> 0);
}
function setHigh(v: bigint, high: number): bigint {
  return (v & U32) | (BigInt(high >>> 0) << 32n);
}
function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The virtio-mmio (version 2) register file and status state machine in front of any `VirtioDevice`: feeds it MMIO accesses with `handleMmio` and gets its interrupts from `interrupt$`. */
export class VirtioMmioTransport {
  readonly device: VirtioDevice;
  readonly #options: VirtioMmioTransportOptions;
  readonly #offered: bigint;

  #status = 0;
  #deviceFeaturesSel = 0;
  #driverFeaturesSel = 0;
  #driverFeatures = 0n;
  #queueSel = 0;
  #shmSel = 0;
  #interruptStatus = 0;
  #configGeneration = 0;
  #queues: QueueRegisters[];
  /** Bumped on every reset so callbacks of an earlier activation become no-ops. */
  #epoch = 0;
  #activation: VirtioActivationInfo | undefined;

  readonly #events: { [K in keyof VirtioMmioTransportEvents]: Emitter<VirtioMmioTransportEvents[K]> } = {
    interrupt: new Emitter(),
    irqLevel: new Emitter(),
    activated: new Emitter(),
    reset: new Emitter(),
    notify: new Emitter(),
    needsReset: new Emitter(),
    warning: new Emitter(),
  };

  /**
   * Plain-callback form of the streams below (no RxJS loaded): calls `listener` for every later
   * event of that kind, synchronously; returns the unsubscribe function.
   */
  on<K extends keyof VirtioMmioTransportEvents>(
    event: K,
    listener: (value: VirtioMmioTransportEvents[K]) => void,
  ): () => void {
    return this.#events[event].listen(listener);
  }

  /** Every interrupt raised: signal an irqfd (edge) per emission. */
  get interrupt$(): Observable<VirtioInterrupt> {
    return this.#events.interrupt.observable;
  }
  /** Level of the interrupt line (InterruptStatus != 0): for KVM_IRQ_LINE. Emits on changes. */
  get irqLevel$(): Observable<boolean> {
    return this.#events.irqLevel.observable;
  }
  /** Negotiated features and queue set-up at DRIVER_OK, for VMMs that process queues elsewhere. */
  get activated$(): Observable<VirtioActivationInfo> {
    return this.#events.activated.observable;
  }
  /** The driver reset the device (wrote 0 to Status). */
  get reset$(): Observable<void> {
    return this.#events.reset.observable;
  }
  /** Queue notifications (QueueNotify writes and `notifyQueue` calls) while active. */
  get notify$(): Observable<number> {
    return this.#events.notify.observable;
  }
  /** The device entered DEVICE_NEEDS_RESET. */
  get needsReset$(): Observable<NeedsResetEvent> {
    return this.#events.needsReset.observable;
  }
  /** Ignored or invalid accesses, with the reason (also logged with NODE_DEBUG=rxvmm:virtio-mmio). */
  get warnings$(): Observable<string> {
    return this.#events.warning.observable;
  }

  constructor(device: VirtioDevice, options: VirtioMmioTransportOptions = {}) {
    this.device = device;
    this.#options = options;
    this.#offered = device.features & ~TRANSPORT_UNSUPPORTED;
    this.#queues = device.queueMaxSizes.map(freshQueue);
    if (options.onInterrupt) this.#events.interrupt.listen(options.onInterrupt);
    if (options.onWarning) this.#events.warning.listen(options.onWarning);
  }

  // ---- state as plain data (snapshots) ------------------------------------------------------

  /** The register file as plain data (`fromState` rebuilds it). */
  state(): VirtioMmioTransportState {
    return {
      version: TRANSPORT_STATE_VERSION,
      deviceType: this.device.deviceType,
      offeredFeatures: this.#offered.toString(),
      queueMaxSizes: [...this.device.queueMaxSizes],
      status: this.#status,
      deviceFeaturesSel: this.#deviceFeaturesSel,
      driverFeaturesSel: this.#driverFeaturesSel,
      driverFeatures: this.#driverFeatures.toString(),
      queueSel: this.#queueSel,
      shmSel: this.#shmSel,
      interruptStatus: this.#interruptStatus,
      configGeneration: this.#configGeneration,
      queues: this.#queues.map((q) => ({
        size: q.size,
        ready: q.ready,
        descTable: q.descTable.toString(),
        driverArea: q.driverArea.toString(),
        deviceArea: q.deviceArea.toString(),
      })),
      activated: this.#activation !== undefined,
    };
  }

  /**
   * A transport over `device` with the registers of `state`. If the device was
   * activated (and not in NEEDS_RESET), the device is activated again with the
   * same features and queues: a device restored to its own saved state first
   * (`DeviceServer.restoreState`) resumes its rings there. Nothing is raised:
   * InterruptStatus is as saved, and the interrupt line's level belongs to the
   * irqchip's saved state. A state this transport could not have reached (a
   * hostile or foreign file, another device) is `EINVAL` before the device is
   * touched; a device that refuses the activation throws its own error.
   */
  static fromState(
    device: VirtioDevice,
    state: VirtioMmioTransportState,
    options: VirtioMmioTransportOptions = {},
  ): VirtioMmioTransport {
    const t = new VirtioMmioTransport(device, options);
    const s = loadTransportState(state, device, t.#offered);
    const S = DeviceStatus;
    if (s.status & S.FEATURES_OK) {
      const why = t.#featuresError(s.driverFeatures);
      if (why) throw bad(`FEATURES_OK with features the device refuses: ${why}`);
    }
    if (s.status & S.DRIVER_OK && !(s.status & S.FEATURES_OK) && !(s.status & S.FAILED))
      throw bad('DRIVER_OK without FEATURES_OK');
    if (s.activated && !(s.status & S.DRIVER_OK)) throw bad('activated without DRIVER_OK');
    t.#status = s.status;
    t.#deviceFeaturesSel = s.deviceFeaturesSel;
    t.#driverFeaturesSel = s.driverFeaturesSel;
    t.#driverFeatures = s.driverFeatures;
    t.#queueSel = s.queueSel;
    t.#shmSel = s.shmSel;
    t.#interruptStatus = s.interruptStatus;
    t.#configGeneration = s.configGeneration;
    t.#queues = s.queues;
    if (!s.activated) return t;
    const queues = t.queueConfigs();
    for (const q of queues) {
      const why = q.ready ? queueLayoutError(q, { isValidRange: options.isValidRange }) : undefined;
      if (why) throw bad(`activated with a bad queue layout: ${why}`);
    }
    const info: VirtioActivationInfo = { features: s.driverFeatures, queues };
    if (s.status & S.DEVICE_NEEDS_RESET) {
      t.#activation = info; // the device stopped when it failed; the driver resets it
      return t;
    }
    t.#activation = info;
    const result = device.activate(t.#activationFor(info));
    if (result && typeof (result as Promise<void>).then === 'function')
      t.#watchActivation(result as Promise<void>);
    return t;
  }

  // ---- observable state -------------------------------------------------------------------

  get status(): number {
    return this.#status;
  }
  get interruptStatus(): number {
    return this.#interruptStatus;
  }
  get configGeneration(): number {
    return this.#configGeneration;
  }
  /** Features the transport offers (the device's minus the ones the transport cannot honour). */
  get offeredFeatures(): bigint {
    return this.#offered;
  }
  /** The driver's features once FEATURES_OK was accepted, else undefined. */
  get negotiatedFeatures(): bigint | undefined {
    return this.#status & DeviceStatus.FEATURES_OK ? this.#driverFeatures : undefined;
  }
  /** True between a successful DRIVER_OK and the next reset. */
  get activated(): boolean {
    return this.#activation !== undefined;
  }
  /** The activation handed to the device, while activated. */
  get activation(): VirtioActivationInfo | undefined {
    return this.#activation;
  }
  /**
   * The queue registers as the driver programmed them, with the ring features
   * (`packed`, `eventIdx`, `indirect`) of the negotiated feature set filled in
   * (all false before FEATURES_OK), so a device opens each queue as it is.
   */
  queueConfigs(): ActivatedQueue[] {
    const features = this.negotiatedFeatures ?? 0n;
    const packed = hasFeature(features, VirtioFeature.RING_PACKED);
    const eventIdx = hasFeature(features, VirtioFeature.EVENT_IDX);
    const indirect = hasFeature(features, VirtioFeature.INDIRECT_DESC);
    return this.#queues.map((q, index) => ({
      index,
      size: q.size,
      maxSize: this.device.queueMaxSizes[index] ?? 0,
      descTable: q.descTable,
      driverArea: q.driverArea,
      deviceArea: q.deviceArea,
      packed,
      eventIdx,
      indirect,
      ready: q.ready,
    }));
  }

  // ---- MMIO access ------------------------------------------------------------------------

  /** A guest read of `size` bytes at `offset` in the window. Invalid accesses read 0. */
  read(offset: number, size: number): number {
    if (offset >= VIRTIO_MMIO_CONFIG_OFFSET)
      return this.#readConfig(offset - VIRTIO_MMIO_CONFIG_OFFSET, size);
    if (size !== 4 || offset % 4 !== 0) {
      this.#warn(
        `read of ${size} byte(s) at register 0x${offset.toString(16)}: registers take aligned 4-byte accesses`,
      );
      return 0;
    }
    return this.#readRegister(offset) >>> 0;
  }

  /** A guest write of `size` bytes (`value`, little-endian order) at `offset` in the window. */
  write(offset: number, size: number, value: number): void {
    if (offset >= VIRTIO_MMIO_CONFIG_OFFSET) {
      this.#writeConfig(offset - VIRTIO_MMIO_CONFIG_OFFSET, size, value);
      return;
    }
    if (size !== 4 || offset % 4 !== 0) {
      this.#warn(
        `write of ${size} byte(s) at register 0x${offset.toString(16)}: registers take aligned 4-byte accesses`,
      );
      return;
    }
    this.#writeRegister(offset, value >>> 0);
  }

  /**
   * Serves an MMIO exit: for a read, fills `data` (little-endian); for a write,
   * takes the value from `data`. `offset` is relative to the window base.
   */
  handleMmio(offset: number, isWrite: boolean, data: Uint8Array): void {
    const size = data.length;
    if (size !== 1 && size !== 2 && size !== 4) {
      this.#warn(
        `${isWrite ? 'write' : 'read'} of ${size} byte(s) at 0x${offset.toString(16)}: unsupported access size`,
      );
      if (!isWrite) data.fill(0);
      return;
    }
    if (isWrite) {
      let value = 0;
      for (let i = size - 1; i >= 0; i--) value = value * 256 + (data[i] ?? 0);
      this.write(offset, size, value);
    } else {
      let value = this.read(offset, size);
      for (let i = 0; i < size; i++) {
        data[i] = value & 0xff;
        value >>>= 8;
      }
    }
  }

  // ---- VMM-side entry points ----------------------------------------------------------------

  /** Queue `index` was kicked outside the register file (an ioeventfd on QueueNotify fired). */
  notifyQueue(index: number): void {
    if (!this.#activation || this.#status & (DeviceStatus.DEVICE_NEEDS_RESET | DeviceStatus.FAILED)) {
      this.#warn(`notify of queue ${index} while the device is not live: ignored`);
      return;
    }
    if (!Number.isInteger(index) || index < 0 || index >= this.#queues.length) {
      this.#warn(`notify of queue ${index}: no such queue`);
      return;
    }
    this.#events.notify.emit(index);
    this.device.queueNotify(index);
  }

  /** Raise a used-buffer interrupt (queues processed elsewhere whose completions reach the VMM). */
  signalUsedBuffer(): void {
    this.#raise(InterruptBit.USED_BUFFER);
  }

  /** The device configuration changed: new ConfigGeneration, and a config interrupt once DRIVER_OK. */
  configChanged(): void {
    this.#configGeneration = (this.#configGeneration + 1) >>> 0;
    if (this.#status & DeviceStatus.DRIVER_OK) this.#raise(InterruptBit.CONFIG_CHANGE);
  }

  /** Put the device in DEVICE_NEEDS_RESET (section 2.1.2) and tell the driver with a config interrupt. */
  setNeedsReset(reason: string, error?: unknown): void {
    if (this.#status & DeviceStatus.DEVICE_NEEDS_RESET) return;
    this.#warn(`device needs reset: ${reason}`);
    this.#status |= DeviceStatus.DEVICE_NEEDS_RESET;
    this.#events.needsReset.emit({ reason, error });
    if (this.#status & DeviceStatus.DRIVER_OK) this.#raise(InterruptBit.CONFIG_CHANGE);
  }

  // ---- registers --------------------------------------------------------------------------

  #readRegister(offset: number): number {
    const R = MmioRegister;
    switch (offset) {
      case R.MagicValue:
        return VIRTIO_MMIO_MAGIC;
      case R.Version:
        return VIRTIO_MMIO_VERSION;
      case R.DeviceID:
        return this.device.deviceType;
      case R.VendorID:
        return this.device.vendorId ?? 0;
      case R.DeviceFeatures:
        return this.#deviceFeaturesSel > 1
          ? 0
          : Number((this.#offered >> BigInt(32 * this.#deviceFeaturesSel)) & U32);
      case R.QueueNumMax:
        return this.device.queueMaxSizes[this.#queueSel] ?? 0;
      case R.QueueReady:
        return this.#queues[this.#queueSel]?.ready ? 1 : 0;
      case R.InterruptStatus:
        return this.#options.alwaysReportUsedBuffer && this.#status & DeviceStatus.DRIVER_OK
          ? this.#interruptStatus | InterruptBit.USED_BUFFER
          : this.#interruptStatus;
      case R.Status:
        return this.#status;
      case R.SHMLenLow:
      case R.SHMLenHigh:
      case R.SHMBaseLow:
      case R.SHMBaseHigh: {
        const region = this.device.sharedMemoryRegions?.[this.#shmSel];
        // A non-existent region reads a length of -1 (all ones).
        const value =
          offset <= R.SHMLenHigh ? (region?.length ?? (1n << 64n) - 1n) : (region?.base ?? (1n << 64n) - 1n);
        return Number(offset === R.SHMLenLow || offset === R.SHMBaseLow ? value & U32 : (value >> 32n) & U32);
      }
      case R.QueueReset:
        return 0; // VIRTIO_F_RING_RESET is never offered
      case R.ConfigGeneration:
        return this.#configGeneration;
      default:
        this.#warn(`read of write-only or reserved register 0x${offset.toString(16)}`);
        return 0;
    }
  }

  #writeRegister(offset: number, value: number): void {
    const R = MmioRegister;
    switch (offset) {
      case R.DeviceFeaturesSel:
        this.#deviceFeaturesSel = value;
        return;
      case R.DriverFeaturesSel:
        this.#driverFeaturesSel = value;
        return;
      case R.DriverFeatures:
        this.#writeDriverFeatures(value);
        return;
      case R.QueueSel:
        this.#queueSel = value;
        return;
      case R.SHMSel:
        this.#shmSel = value;
        return;
      case R.QueueNum:
      case R.QueueDescLow:
      case R.QueueDescHigh:
      case R.QueueDriverLow:
      case R.QueueDriverHigh:
      case R.QueueDeviceLow:
      case R.QueueDeviceHigh:
        this.#writeQueueSetup(offset, value);
        return;
      case R.QueueReady:
        this.#writeQueueReady(value);
        return;
      case R.QueueNotify: {
        const negotiated = this.negotiatedFeatures ?? 0n;
        // With NOTIFICATION_DATA the low 16 bits are the index, the rest describes the avail position.
        this.notifyQueue(hasFeature(negotiated, VirtioFeature.NOTIFICATION_DATA) ? value & 0xffff : value);
        return;
      }
      case R.InterruptACK:
        this.#acknowledge(value);
        return;
      case R.Status:
        this.#writeStatus(value);
        return;
      case R.QueueReset:
        this.#warn('QueueReset written but VIRTIO_F_RING_RESET is not offered: ignored');
        return;
      default:
        this.#warn(
          `write of 0x${value.toString(16)} to read-only or reserved register 0x${offset.toString(16)}`,
        );
    }
  }

  #writeDriverFeatures(value: number): void {
    const s = this.#status;
    if (!(s & DeviceStatus.DRIVER) || s & DeviceStatus.FEATURES_OK) {
      this.#warn(
        'DriverFeatures written outside feature negotiation (needs DRIVER, not FEATURES_OK): ignored',
      );
      return;
    }
    if (this.#driverFeaturesSel > 1) {
      if (value !== 0)
        this.#warn(
          `DriverFeatures word ${this.#driverFeaturesSel} = 0x${value.toString(16)}: no such features`,
        );
      return;
    }
    const shift = BigInt(32 * this.#driverFeaturesSel);
    this.#driverFeatures = (this.#driverFeatures & ~(U32 << shift)) | (BigInt(value) << shift);
  }

  #selectedQueueForSetup(what: string): QueueRegisters | undefined {
    const q = this.#queues[this.#queueSel];
    if (!q) {
      this.#warn(`${what} for queue ${this.#queueSel}: no such queue`);
      return undefined;
    }
    if (q.ready) {
      this.#warn(`${what} for queue ${this.#queueSel} while QueueReady is 1: ignored`);
      return undefined;
    }
    if (this.#activation) {
      this.#warn(`${what} for queue ${this.#queueSel} after DRIVER_OK: ignored`);
      return undefined;
    }
    return q;
  }

  #writeQueueSetup(offset: number, value: number): void {
    const R = MmioRegister;
    const q = this.#selectedQueueForSetup(`register 0x${offset.toString(16)} write`);
    if (!q) return;
    switch (offset) {
      case R.QueueNum:
        q.size = value;
        return;
      case R.QueueDescLow:
        q.descTable = setLow(q.descTable, value);
        return;
      case R.QueueDescHigh:
        q.descTable = setHigh(q.descTable, value);
        return;
      case R.QueueDriverLow:
        q.driverArea = setLow(q.driverArea, value);
        return;
      case R.QueueDriverHigh:
        q.driverArea = setHigh(q.driverArea, value);
        return;
      case R.QueueDeviceLow:
        q.deviceArea = setLow(q.deviceArea, value);
        return;
      case R.QueueDeviceHigh:
        q.deviceArea = setHigh(q.deviceArea, value);
        return;
    }
  }

  #writeQueueReady(value: number): void {
    const q = this.#queues[this.#queueSel];
    if (!q) {
      this.#warn(`QueueReady for queue ${this.#queueSel}: no such queue`);
      return;
    }
    if (this.#activation) {
      this.#warn(`QueueReady for queue ${this.#queueSel} after DRIVER_OK: ignored`);
      return;
    }
    if (value > 1) this.#warn(`QueueReady = ${value}: only 0 and 1 are defined, taking bit 0`);
    q.ready = (value & 1) === 1;
  }

  #acknowledge(value: number): void {
    const before = this.#interruptStatus;
    this.#interruptStatus &= ~value;
    if (before !== 0 && this.#interruptStatus === 0) this.#events.irqLevel.emit(false);
  }

  #raise(bits: number): void {
    const before = this.#interruptStatus;
    this.#interruptStatus |= bits;
    this.#events.interrupt.emit({ bits, status: this.#interruptStatus });
    if (before === 0) this.#events.irqLevel.emit(true);
  }

  // ---- status state machine ---------------------------------------------------------------

  #writeStatus(value: number): void {
    if (value === 0) {
      this.#doReset();
      return;
    }
    const S = DeviceStatus;
    const old = this.#status;
    // DEVICE_NEEDS_RESET is the device's bit: a driver echoing it back (read-modify-write) changes nothing.
    const written = (value & ~S.DEVICE_NEEDS_RESET) | (old & S.DEVICE_NEEDS_RESET);
    if (value & ~0xff) {
      this.#warn(`Status = 0x${value.toString(16)}: undefined bits`);
      return;
    }
    if ((old & ~written) !== 0) {
      this.#warn(
        `Status 0x${old.toString(16)} -> 0x${written.toString(16)} clears bits; only a write of 0 resets`,
      );
      return;
    }
    const added = written & ~old;
    if (added === 0) return;
    if (old & S.FAILED) {
      this.#warn('Status written after FAILED: only a reset (0) is accepted');
      return;
    }
    if (added & S.FAILED) {
      this.#status = written;
      this.#warn('driver set FAILED');
      return;
    }
    // Each step needs the previous ones (section 3.1.1).
    const has = (bit: number) => (written & bit) !== 0;
    if (
      (added & S.DRIVER && !has(S.ACKNOWLEDGE)) ||
      (added & S.FEATURES_OK && !(has(S.ACKNOWLEDGE) && has(S.DRIVER))) ||
      (added & S.DRIVER_OK && !has(S.FEATURES_OK))
    ) {
      this.#warn(`Status 0x${old.toString(16)} -> 0x${written.toString(16)}: out of order, ignored`);
      return;
    }
    let next = written;
    if (added & S.FEATURES_OK) {
      const why = this.#featuresError(this.#driverFeatures);
      if (why) {
        // The driver re-reads Status and sees FEATURES_OK missing (section 3.1.1 step 6).
        this.#warn(`FEATURES_OK refused: ${why}`);
        next &= ~(S.FEATURES_OK | S.DRIVER_OK);
      }
    }
    this.#status = next;
    if (added & S.DRIVER_OK && next & S.DRIVER_OK && !(next & S.DEVICE_NEEDS_RESET)) this.#activate();
  }

  #featuresError(features: bigint): string | undefined {
    const extra = features & ~this.#offered;
    if (extra !== 0n)
      return `driver features 0x${features.toString(16)} include unoffered bits 0x${extra.toString(16)}`;
    if (!hasFeature(features, VirtioFeature.VERSION_1))
      return 'VIRTIO_F_VERSION_1 not accepted (legacy drivers are not supported)';
    if (this.device.validateFeatures && !this.device.validateFeatures(features))
      return 'device rejected the feature set';
    return undefined;
  }

  #activate(): void {
    const features = this.#driverFeatures;
    const queues = this.queueConfigs();
    for (const q of queues) {
      if (!q.ready) continue;
      const why = queueLayoutError(q, { isValidRange: this.#options.isValidRange });
      if (why) {
        this.setNeedsReset(why);
        return;
      }
    }
    const info: VirtioActivationInfo = { features, queues };
    this.#activation = info;
    try {
      const result = this.device.activate(this.#activationFor(info));
      if (result && typeof (result as Promise<void>).then === 'function')
        this.#watchActivation(result as Promise<void>);
    } catch (error) {
      this.#activation = undefined;
      this.setNeedsReset(`activation failed: ${describe(error)}`, error);
      return;
    }
    this.#events.activated.emit(info);
  }

  /** The callbacks of one activation: no-ops once a reset ended it. */
  #activationFor(info: VirtioActivationInfo): VirtioActivation {
    const epoch = this.#epoch;
    const live = () => epoch === this.#epoch;
    return {
      ...info,
      signalUsedBuffer: () => {
        if (live()) this.#raise(InterruptBit.USED_BUFFER);
      },
      signalConfigChange: () => {
        if (live()) this.configChanged();
      },
      needsReset: (error: unknown) => {
        if (live()) this.setNeedsReset(describe(error), error);
      },
    };
  }

  /** An asynchronous activation that rejects sends the device to NEEDS_RESET. */
  #watchActivation(result: PromiseLike<void>): void {
    const epoch = this.#epoch;
    result.then(undefined, (error: unknown) => {
      if (epoch !== this.#epoch) return;
      this.#activation = undefined;
      this.setNeedsReset(`activation failed: ${describe(error)}`, error);
    });
  }

  #doReset(): void {
    this.#epoch++;
    const wasLevel = this.#interruptStatus !== 0;
    this.#status = 0;
    this.#deviceFeaturesSel = 0;
    this.#driverFeaturesSel = 0;
    this.#driverFeatures = 0n;
    this.#queueSel = 0;
    this.#shmSel = 0;
    this.#interruptStatus = 0;
    this.#queues = this.device.queueMaxSizes.map(freshQueue);
    this.#activation = undefined;
    if (wasLevel) this.#events.irqLevel.emit(false);
    try {
      const result = this.device.reset();
      if (result && typeof (result as Promise<void>).then === 'function') {
        (result as Promise<void>).then(undefined, (error: unknown) =>
          this.#warn(`device reset failed: ${describe(error)}`),
        );
      }
    } catch (error) {
      this.#warn(`device reset failed: ${describe(error)}`);
    }
    this.#events.reset.emit(undefined);
  }

  // ---- configuration space ----------------------------------------------------------------

  #configAccessOk(offset: number, size: number, what: string): boolean {
    if ((size !== 1 && size !== 2 && size !== 4) || offset % size !== 0) {
      this.#warn(
        `config ${what} of ${size} byte(s) at +0x${offset.toString(16)}: needs an aligned 1, 2 or 4-byte access`,
      );
      return false;
    }
    return true;
  }

  #readConfig(offset: number, size: number): number {
    if (!this.#configAccessOk(offset, size, 'read')) return 0;
    const bytes = new Uint8Array(size);
    this.device.readConfig(offset, bytes);
    let value = 0;
    for (let i = size - 1; i >= 0; i--) value = value * 256 + (bytes[i] ?? 0);
    return value;
  }

  #writeConfig(offset: number, size: number, value: number): void {
    if (!this.#configAccessOk(offset, size, 'write')) return;
    const bytes = new Uint8Array(size);
    let v = value >>> 0;
    for (let i = 0; i < size; i++) {
      bytes[i] = v & 0xff;
      v >>>= 8;
    }
    this.device.writeConfig(offset, bytes);
  }

  #warn(message: string): void {
    log(message);
    this.#events.warning.emit(message);
  }
}
