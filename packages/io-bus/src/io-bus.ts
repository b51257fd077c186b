import { errnoError } from '@rxvmm/errno';
import { type Observable, Subject } from 'rxjs';
import { ioRangeCmp } from './range.js';
import type { BusKind, IoDevice, Registration, UnhandledAccess } from './types.js';

/** NR_IOBUS_DEVS: ordinary (non-ioeventfd) devices per bus. */
export const NR_IOBUS_DEVS = 1000;

/** Access sizes a bus dispatches (a vCPU splits anything larger first), as bigints. */
const LEN_BIGINT: readonly bigint[] = [0n, 1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n];

/** kvm_io_bus_cmp(access, entry) with the access's end precomputed. */
function cmpEntry(addr: bigint, end: bigint, e: Entry): number {
  if (addr < e.addr) return -1;
  if (e.len !== 0) return end > e.end ? 1 : 0;
  return addr > e.addr ? 1 : 0;
}

/** Options of `bus.register()`. */
export interface RegisterOptions {
  /**
   * Registrations made by ioeventfd: the kernel keeps `ioeventfd_count` and
   * leaves them out of the NR_IOBUS_DEVS limit ("limited by maximum fd").
   */
  ioeventfd?: boolean;
}

interface Entry {
  addr: bigint;
  len: number;
  /** addr + len, precomputed: dispatch compares ends without allocating bigints. */
  end: bigint;
  device: IoDevice;
  ioeventfd: boolean;
  handle: BusRegistration;
}

class BusRegistration implements Registration {
  registered = true;
  constructor(
    private readonly bus: IoBus,
    readonly addr: bigint,
    readonly len: number,
    readonly device: IoDevice,
  ) {}
  /** Removes the registration from its bus (idempotent). */
  unregister(): void {
    if (this.registered) this.bus.unregisterHandle(this);
  }
  /** Same as `unregister()`. */
  [Symbol.dispose](): void {
    this.unregister();
  }
}

/**
 * One KVM I/O bus (`struct kvm_io_bus`): registrations kept sorted with the
 * kernel's comparator, lookup by binary search plus step-back to the first
 * containing registration, then each containing device in order until one
 * takes the access.
 */
export class IoBus {
  readonly kind: BusKind;
  readonly maxDevices: number;
  #entries: Entry[] = [];
  #ioeventfdCount = 0;
  readonly #unhandled = new Subject<UnhandledAccess>();
  /** Accesses no device took (a VMM turns these into exits / its own dispatch). */
  readonly unhandled$: Observable<UnhandledAccess> = this.#unhandled.asObservable();

  constructor(kind: BusKind, options: { maxDevices?: number } = {}) {
    this.kind = kind;
    this.maxDevices = options.maxDevices ?? NR_IOBUS_DEVS;
  }

  /** Registrations (ioeventfds included). */
  get size(): number {
    return this.#entries.length;
  }

  /** Ordinary devices, the ones the limit counts. */
  get deviceCount(): number {
    return this.#entries.length - this.#ioeventfdCount;
  }

  get ioeventfdCount(): number {
    return this.#ioeventfdCount;
  }

  /**
   * kvm_io_bus_register_dev. `ENOSPC` once `maxDevices` ordinary devices are
   * registered; as in the kernel the check runs for every registration
   * (ioeventfds too) but only ordinary devices are counted.
   */
  register(addr: bigint, len: number, device: IoDevice, options: RegisterOptions = {}): Registration {
    if (len < 0 || !Number.isInteger(len)) throw errnoError('EINVAL', `bad length ${len}`);
    if (this.#entries.length - this.#ioeventfdCount > this.maxDevices - 1) {
      throw errnoError('ENOSPC', `${this.kind} bus already has ${this.maxDevices} devices`);
    }
    const handle = new BusRegistration(this, addr, len, device);
    const entry: Entry = {
      addr,
      len,
      end: addr + BigInt(len),
      device,
      ioeventfd: options.ioeventfd === true,
      handle,
    };
    // Insert after every entry that does not sort after it (kernel loop: first cmp > 0).
    let i = 0;
    while (i < this.#entries.length && ioRangeCmp(this.#entries[i] as Entry, entry) <= 0) i++;
    this.#entries.splice(i, 0, entry);
    if (entry.ioeventfd) this.#ioeventfdCount++;
    return handle;
  }

  /** kvm_io_bus_unregister_dev: removes the first registration of `device`; false when it has none. */
  unregister(device: IoDevice): boolean {
    const entry = this.#entries.find((e) => e.device === device);
    if (!entry) return false;
    this.unregisterHandle(entry.handle);
    return true;
  }

  /** Removes the registration `handle` (what `Registration.unregister()` calls). @internal */
  unregisterHandle(handle: BusRegistration): void {
    const i = this.#entries.findIndex((e) => e.handle === handle);
    if (i < 0) return;
    const [entry] = this.#entries.splice(i, 1);
    if (entry?.ioeventfd) this.#ioeventfdCount--;
    handle.registered = false;
  }

  /** The registrations in dispatch order (address, then end). */
  registrations(): readonly Registration[] {
    return this.#entries.map((e) => e.handle);
  }

  /** kvm_io_bus_get_first_dev: index of the first registration containing the access, or -1. */
  firstIndex(addr: bigint, len: number): number {
    return this.#firstIndex(addr, addr + BigInt(len));
  }

  /**
   * The same search as `bsearch(key, entries)` with `ioRangeCmp` (lib/bsearch.c and
   * kvm_io_bus_cmp, checked against them by the tests), on precomputed end addresses.
   */
  #firstIndex(addr: bigint, end: bigint): number {
    const entries = this.#entries;
    let base = 0;
    let num = entries.length;
    let off = -1;
    while (num > 0) {
      const pivot = base + (num >> 1);
      const result = cmpEntry(addr, end, entries[pivot] as Entry);
      if (result === 0) {
        off = pivot;
        break;
      }
      if (result > 0) {
        base = pivot + 1;
        num--;
      }
      num >>= 1;
    }
    if (off < 0) return -1;
    while (off > 0 && cmpEntry(addr, end, entries[off - 1] as Entry) === 0) off--;
    return off;
  }

  /** Guest write: true when a device took it; otherwise `unhandled$` emits it. */
  write(addr: bigint, data: Uint8Array): boolean {
    return this.#dispatch(true, addr, data);
  }

  /** Guest read into `data`: true when a device filled it; otherwise `unhandled$` emits it. */
  read(addr: bigint, data: Uint8Array): boolean {
    return this.#dispatch(false, addr, data);
  }

  #dispatch(isWrite: boolean, addr: bigint, data: Uint8Array): boolean {
    const len = data.length;
    if (len !== 4 && len !== 1 && len !== 2 && len !== 8) {
      throw errnoError('EINVAL', `access size ${len} is not 1, 2, 4 or 8`);
    }
    const end = addr + LEN_BIGINT[len]!;
    const entries = this.#entries;
    let idx = this.#firstIndex(addr, end);
    if (idx >= 0) {
      while (idx < entries.length && cmpEntry(addr, end, entries[idx] as Entry) === 0) {
        const device = (entries[idx] as Entry).device;
        const taken = isWrite ? device.write?.(addr, data) : device.read?.(addr, data);
        if (taken === true) return true;
        idx++;
      }
    }
    if (this.#unhandled.observed) this.#unhandled.next({ bus: this.kind, isWrite, addr, len, data });
    return false;
  }

  /** Removes every registration (VM teardown) and completes `unhandled$`. */
  close(): void {
    for (const e of this.#entries) e.handle.registered = false;
    this.#entries = [];
    this.#ioeventfdCount = 0;
    this.#unhandled.complete();
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
