/**
 * A device on an I/O bus, as `struct kvm_io_device_ops`: each handler gets the
 * access (address, bytes) and returns `true` when it took it. Returning `false`
 * is the kernel's `-EOPNOTSUPP`: the bus offers the access to the next
 * registration that contains it (that is how a non-matching ioeventfd lets a
 * write fall through).
 */
export interface IoDevice {
  /** Guest read of `data.length` bytes at `addr`: fill `data` (little-endian) and return true to take it. */
  read?(addr: bigint, data: Uint8Array): boolean;
  /** Guest write of `data` at `addr`: return true to take (absorb) it. */
  write?(addr: bigint, data: Uint8Array): boolean;
}

/** The buses of `enum kvm_bus` that exist on x86 (plus virtio-ccw notify for completeness). */
export type BusKind = 'pio' | 'mmio' | 'fast-mmio' | 'virtio-ccw';

/** An access no device took: on a vCPU this becomes KVM_EXIT_IO / KVM_EXIT_MMIO. */
export interface UnhandledAccess {
  bus: BusKind;
  isWrite: boolean;
  addr: bigint;
  len: number;
  /** The bytes written, or (for a read) the buffer a handler would have filled. */
  data: Uint8Array;
}

/** A live registration; `unregister()` (or dispose) removes it from its bus. */
export interface Registration extends Disposable {
  readonly addr: bigint;
  readonly len: number;
  readonly device: IoDevice;
  /** False once it has been removed. */
  readonly registered: boolean;
  /** Removes the registration from its bus (idempotent). */
  unregister(): void;
}
