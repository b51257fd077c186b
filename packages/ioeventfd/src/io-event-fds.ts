import { errnoError } from '@rxvmm/errno';
import { type EventFdResolver, resolveSoftEventFd } from '@rxvmm/eventfd';
import { type BusKind, IoBus, type Registration } from '@rxvmm/io-bus';
import {
  IOEVENTFD_FLAG_DATAMATCH,
  IOEVENTFD_FLAG_DEASSIGN,
  IOEVENTFD_FLAG_PIO,
  IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY,
  IOEVENTFD_VALID_FLAG_MASK,
} from '@rxvmm/kvm';
import { IoEventFd } from './io-event-fd.js';

const U64_MAX = (1n << 64n) - 1n;

/** The fields of `struct kvm_ioeventfd`. */
export interface KvmIoEventFd {
  addr: bigint;
  len: number;
  fd: number;
  datamatch?: bigint;
  flags?: number;
}

/** The buses an ioeventfd may land on (KVM_PIO_BUS, KVM_MMIO_BUS, KVM_FAST_MMIO_BUS, KVM_VIRTIO_CCW_NOTIFY_BUS). */
export interface IoEventFdBuses {
  pio: IoBus;
  mmio: IoBus;
  fastMmio: IoBus;
  /** Only s390 dispatches it; assignments with VIRTIO_CCW_NOTIFY land here. Created on demand. */
  virtioCcw?: IoBus;
}

interface Assigned {
  device: IoEventFd;
  registration: Registration;
}

/**
 * A VM's ioeventfds (`kvm->ioeventfds`): KVM_IOEVENTFD assign and deassign with
 * the kernel's validation order, collision rule and errno.
 */
export class IoEventFds implements Disposable {
  readonly #buses: IoEventFdBuses;
  readonly #resolve: EventFdResolver;
  #list: Assigned[] = [];

  constructor(buses: IoEventFdBuses, options: { resolve?: EventFdResolver } = {}) {
    this.#buses = buses;
    this.#resolve = options.resolve ?? resolveSoftEventFd;
  }

  /** How many ioeventfds are assigned (a length-0 MMIO one counts twice: MMIO and fast MMIO). */
  get count(): number {
    return this.#list.length;
  }

  /** The assigned ioeventfds, in assignment order. */
  list(): readonly IoEventFd[] {
    return this.#list.map((a) => a.device);
  }

  /** KVM_IOEVENTFD: deassign when `flags` has DEASSIGN, otherwise assign. Throws ErrnoError. */
  ioeventfd(args: KvmIoEventFd): void {
    if ((args.flags ?? 0) & IOEVENTFD_FLAG_DEASSIGN) this.deassign(args);
    else this.assign(args);
  }

  /** kvm_assign_ioeventfd(). */
  assign(args: KvmIoEventFd): void {
    checkDatamatch(args);
    const flags = args.flags ?? 0;
    const busKind = busFromFlags(flags);
    if (![0, 1, 2, 4, 8].includes(args.len))
      throw errnoError('EINVAL', `length ${args.len} is not 0, 1, 2, 4 or 8`);
    checkU64(args.addr, 'addr');
    if (args.addr + BigInt(args.len) > U64_MAX) throw errnoError('EINVAL', 'addr + len wraps');
    if (!Number.isInteger(flags) || flags < 0 || flags & ~IOEVENTFD_VALID_FLAG_MASK) {
      throw errnoError('EINVAL', `unknown flags 0x${flags.toString(16)}`);
    }
    if (args.len === 0 && flags & IOEVENTFD_FLAG_DATAMATCH)
      throw errnoError('EINVAL', 'length 0 cannot have DATAMATCH');
    this.#assignOn(busKind, args);
    // Length-0 MMIO ioeventfds also go on the fast MMIO bus (a lookup without the length).
    if (args.len === 0 && busKind === 'mmio') {
      try {
        this.#assignOn('fast-mmio', args);
      } catch (error) {
        this.#deassignOn('mmio', args);
        throw error;
      }
    }
  }

  /** kvm_deassign_ioeventfd(): ENOENT when nothing matches. */
  deassign(args: KvmIoEventFd): void {
    checkDatamatch(args);
    const busKind = busFromFlags(args.flags ?? 0);
    const found = this.#deassignOn(busKind, args);
    if (args.len === 0 && busKind === 'mmio') this.#deassignOn('fast-mmio', args);
    if (!found) throw errnoError('ENOENT', 'no such ioeventfd');
  }

  /** VM teardown: every ioeventfd is released. */
  close(): void {
    for (const a of this.#list) a.registration.unregister();
    this.#list = [];
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** kvm_assign_ioeventfd_idx(). */
  #assignOn(busKind: BusKind, args: KvmIoEventFd): void {
    const eventfd = this.#resolve(args.fd);
    const flags = args.flags ?? 0;
    const wildcard = (flags & IOEVENTFD_FLAG_DATAMATCH) === 0;
    const datamatch = wildcard ? 0n : (args.datamatch ?? 0n);
    const p = new IoEventFd(busKind, args.addr, args.len, eventfd, wildcard, datamatch);
    if (this.#collides(p)) throw errnoError('EEXIST', 'an ioeventfd already matches these writes');
    const registration = this.#bus(busKind).register(p.addr, p.length, p, { ioeventfd: true });
    this.#list.push({ device: p, registration });
  }

  /** kvm_deassign_ioeventfd_idx(): removes the first exact match; false when none. */
  #deassignOn(busKind: BusKind, args: KvmIoEventFd): boolean {
    const eventfd = this.#resolve(args.fd);
    const wildcard = ((args.flags ?? 0) & IOEVENTFD_FLAG_DATAMATCH) === 0;
    const datamatch = args.datamatch ?? 0n;
    const i = this.#list.findIndex(({ device: p }) => {
      if (
        p.bus !== busKind ||
        p.eventfd !== eventfd ||
        p.addr !== args.addr ||
        p.length !== args.len ||
        p.wildcard !== wildcard
      ) {
        return false;
      }
      return p.wildcard || p.datamatch === datamatch;
    });
    if (i < 0) return false;
    const [removed] = this.#list.splice(i, 1);
    removed?.registration.unregister();
    return true;
  }

  /** ioeventfd_check_collision(). */
  #collides(p: IoEventFd): boolean {
    return this.#list.some(
      ({ device: q }) =>
        q.bus === p.bus &&
        q.addr === p.addr &&
        (q.length === 0 ||
          p.length === 0 ||
          (q.length === p.length && (q.wildcard || p.wildcard || q.datamatch === p.datamatch))),
    );
  }

  #bus(kind: BusKind): IoBus {
    switch (kind) {
      case 'pio':
        return this.#buses.pio;
      case 'mmio':
        return this.#buses.mmio;
      case 'fast-mmio':
        return this.#buses.fastMmio;
      case 'virtio-ccw':
        this.#buses.virtioCcw ??= new IoBus('virtio-ccw');
        return this.#buses.virtioCcw;
    }
  }
}

/** ioeventfd_bus_from_flags(). */
function busFromFlags(flags: number): BusKind {
  if (flags & IOEVENTFD_FLAG_PIO) return 'pio';
  if (flags & IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY) return 'virtio-ccw';
  return 'mmio';
}

/**
 * `struct kvm_ioeventfd.datamatch` is a u64: a value outside it cannot be passed
 * to the kernel at all, so it is EINVAL (as kvm-linux's encoder says), never wrapped.
 */
function checkDatamatch(args: KvmIoEventFd): void {
  if (args.datamatch !== undefined) checkU64(args.datamatch, 'datamatch');
}

function checkU64(value: bigint, name: string): void {
  if (typeof value !== 'bigint' || value < 0n || value > U64_MAX)
    throw errnoError('EINVAL', `${name} is not a u64`);
}
