import type { KernelEventFd } from '@rxvmm/eventfd';
import type { BusKind, IoDevice } from '@rxvmm/io-bus';

/** Reads `data` as an unsigned little-endian integer (the guest's written value). */
export function leValue(data: Uint8Array): bigint {
  let v = 0n;
  for (let i = data.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[i] as number);
  return v;
}

/**
 * One assigned ioeventfd (`struct _ioeventfd`): an io-bus device that signals
 * its eventfd on a matching write and declines everything else.
 */
export class IoEventFd implements IoDevice {
  constructor(
    readonly bus: BusKind,
    readonly addr: bigint,
    readonly length: number,
    readonly eventfd: KernelEventFd,
    /** No DATAMATCH: any value matches. */
    readonly wildcard: boolean,
    readonly datamatch: bigint,
  ) {}

  /** ioeventfd_in_range(). */
  matches(addr: bigint, data: Uint8Array): boolean {
    if (addr !== this.addr) return false;
    if (this.length === 0) return true; // length 0: any access length
    if (data.length !== this.length) return false;
    if (this.wildcard) return true;
    return leValue(data) === this.datamatch;
  }

  /** ioeventfd_write(): a match signals (+1) and absorbs the write; otherwise -EOPNOTSUPP. */
  write(addr: bigint, data: Uint8Array): boolean {
    if (!this.matches(addr, data)) return false;
    this.eventfd.signal(1n);
    return true;
  }
  // No read(): guest reads are never handled by an ioeventfd.
}
