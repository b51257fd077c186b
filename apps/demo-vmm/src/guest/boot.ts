/** The boot_info block the VMM writes for either backend's guest. */
import { DEVICE_VECTOR, GUEST_QUEUE_SIZE, MMIO_BASE, RAM_SIZE } from '../vmm/layout.js';
import { BOOT_INFO_MAGIC, type BootInfo, GuestMode, SCRATCH_BASE } from './abi.js';

export function bootInfoFor(options: {
  requests: number;
  blockSize: number;
  guestMode: 'normal' | 'bad-queue-addr' | 'bad-head';
  ioapicPin: bigint;
}): BootInfo {
  const mode =
    options.guestMode === 'bad-queue-addr'
      ? GuestMode.badQueueAddr
      : options.guestMode === 'bad-head'
        ? GuestMode.badHead
        : GuestMode.normal;
  return {
    magic: BOOT_INFO_MAGIC,
    mmioBase: MMIO_BASE,
    requests: BigInt(options.requests),
    blockSize: BigInt(options.blockSize),
    irqVector: BigInt(DEVICE_VECTOR),
    ioapicPin: options.ioapicPin,
    mode: BigInt(mode),
    scratchBase: SCRATCH_BASE,
    scratchSize: BigInt(RAM_SIZE) - SCRATCH_BASE,
    ramSize: BigInt(RAM_SIZE),
    queueSize: BigInt(GUEST_QUEUE_SIZE),
  };
}
