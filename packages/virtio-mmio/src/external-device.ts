/**
 * A `VirtioDevice` whose queues are served somewhere else: another thread, or
 * a vhost-user back-end in another process. The transport still runs the
 * register file here; this device only reports what the driver set up
 * (`activated$`), forwards kicks that reach the VMM (`kick$`, e.g. to a kick
 * eventfd when no ioeventfd absorbs them) and serves a configuration space the
 * caller supplies (for vhost-user: the bytes of GET_CONFIG).
 */
import type { VirtioActivation, VirtioActivationInfo, VirtioDevice } from '@rxvmm/virtio';
import type { Observable } from 'rxjs';
import { Emitter } from './emitter.js';

/** What an `ExternalDevice` offers on behalf of the remote device. */
export interface ExternalDeviceOptions {
  deviceType: number;
  /** Features the remote side offers (VIRTIO_F_VERSION_1 included). */
  features: bigint;
  queueMaxSizes: readonly number[];
  /** Configuration space bytes (copied; replace with `setConfig`). */
  config?: Uint8Array;
  vendorId?: number;
  /** Called on driver writes to the configuration space (vhost-user: SET_CONFIG). */
  onConfigWrite?: (offset: number, data: Uint8Array) => void;
}

/** ExternalDevice's events by name, for `on(name, listener)` (the same events as the `x$` streams). */
export interface ExternalDeviceEvents {
  activated: VirtioActivationInfo;
  kick: number;
  reset: undefined;
}

/** A `VirtioDevice` whose queues are served elsewhere (a vhost-user back-end, another thread): it offers what it is told, and reports activation, kicks and resets as events. */
export class ExternalDevice implements VirtioDevice {
  readonly deviceType: number;
  readonly features: bigint;
  readonly queueMaxSizes: readonly number[];
  readonly vendorId: number;
  #config: Uint8Array;
  #activation: VirtioActivation | undefined;
  readonly #onConfigWrite: ((offset: number, data: Uint8Array) => void) | undefined;
  readonly #events: { [K in keyof ExternalDeviceEvents]: Emitter<ExternalDeviceEvents[K]> } = {
    activated: new Emitter(),
    kick: new Emitter(),
    reset: new Emitter(),
  };

  /** Plain-callback form of the streams below (no RxJS loaded); returns the unsubscribe function. */
  on<K extends keyof ExternalDeviceEvents>(
    event: K,
    listener: (value: ExternalDeviceEvents[K]) => void,
  ): () => void {
    return this.#events[event].listen(listener);
  }

  /** The driver set the device up: hand features and queue addresses to whoever serves the queues. */
  get activated$(): Observable<VirtioActivationInfo> {
    return this.#events.activated.observable;
  }
  /** A queue was kicked through the register file (or `transport.notifyQueue`). */
  get kick$(): Observable<number> {
    return this.#events.kick.observable;
  }
  /** The driver reset the device: stop the remote queues. */
  get reset$(): Observable<void> {
    return this.#events.reset.observable;
  }

  constructor(options: ExternalDeviceOptions) {
    this.deviceType = options.deviceType;
    this.features = options.features;
    this.queueMaxSizes = [...options.queueMaxSizes];
    this.vendorId = options.vendorId ?? 0;
    this.#config = Uint8Array.from(options.config ?? []);
    this.#onConfigWrite = options.onConfigWrite;
  }

  /** The activation while active: call `signalUsedBuffer` / `needsReset` from the remote side's events. */
  get activation(): VirtioActivation | undefined {
    return this.#activation;
  }

  /** New configuration bytes; call `transport.configChanged()` after it so the driver notices. */
  setConfig(config: Uint8Array): void {
    this.#config = Uint8Array.from(config);
  }

  readConfig(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) data[i] = this.#config[offset + i] ?? 0;
  }

  writeConfig(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++)
      if (offset + i < this.#config.length) this.#config[offset + i] = data[i] ?? 0;
    this.#onConfigWrite?.(offset, Uint8Array.from(data));
  }

  activate(activation: VirtioActivation): void {
    this.#activation = activation;
    this.#events.activated.emit({ features: activation.features, queues: activation.queues });
  }

  reset(): void {
    const was = this.#activation !== undefined;
    this.#activation = undefined;
    if (was) this.#events.reset.emit(undefined);
  }

  queueNotify(queueIndex: number): void {
    this.#events.kick.emit(queueIndex);
  }
}
