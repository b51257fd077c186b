/**
 * Constants of the virtio-mmio transport (virtio 1.2, section 4.2) and the
 * generic virtio bits (section 2.1 status, section 6 reserved feature bits).
 */

/** "virt" in little-endian: what MagicValue always reads. */
export const VIRTIO_MMIO_MAGIC = 0x74726976;
/** Version 2 is the modern (non-legacy) virtio-mmio interface. */
export const VIRTIO_MMIO_VERSION = 2;
/** Size of the control register block; device configuration space starts here. */
export const VIRTIO_MMIO_CONFIG_OFFSET = 0x100;
/** A conventional window size for one virtio-mmio device (registers + config). */
export const VIRTIO_MMIO_WINDOW_SIZE = 0x200;

/** Register offsets (table 4.1). Low/High pairs are the two halves of 64-bit values. */
export const MmioRegister = {
  MagicValue: 0x000,
  Version: 0x004,
  DeviceID: 0x008,
  VendorID: 0x00c,
  DeviceFeatures: 0x010,
  DeviceFeaturesSel: 0x014,
  DriverFeatures: 0x020,
  DriverFeaturesSel: 0x024,
  QueueSel: 0x030,
  QueueNumMax: 0x034,
  QueueNum: 0x038,
  QueueReady: 0x044,
  QueueNotify: 0x050,
  InterruptStatus: 0x060,
  InterruptACK: 0x064,
  Status: 0x070,
  QueueDescLow: 0x080,
  QueueDescHigh: 0x084,
  QueueDriverLow: 0x090,
  QueueDriverHigh: 0x094,
  QueueDeviceLow: 0x0a0,
  QueueDeviceHigh: 0x0a4,
  SHMSel: 0x0ac,
  SHMLenLow: 0x0b0,
  SHMLenHigh: 0x0b4,
  SHMBaseLow: 0x0b8,
  SHMBaseHigh: 0x0bc,
  QueueReset: 0x0c0,
  ConfigGeneration: 0x0fc,
  Config: 0x100,
} as const;
export type MmioRegisterName = keyof typeof MmioRegister;

/** Device status bits (section 2.1). */
export const DeviceStatus = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  DEVICE_NEEDS_RESET: 64,
  FAILED: 128,
} as const;

/** InterruptStatus / InterruptACK bits (section 4.2.2). */
export const InterruptBit = {
  /** Used Buffer Notification: the device used a buffer in at least one queue. */
  USED_BUFFER: 1,
  /** Configuration Change Notification (also sent with DEVICE_NEEDS_RESET). */
  CONFIG_CHANGE: 2,
} as const;

/** Reserved (transport/ring) feature bits (section 6), as bit numbers. */
export const VirtioFeature = {
  INDIRECT_DESC: 28,
  EVENT_IDX: 29,
  VERSION_1: 32,
  ACCESS_PLATFORM: 33,
  RING_PACKED: 34,
  IN_ORDER: 35,
  ORDER_PLATFORM: 36,
  SR_IOV: 37,
  NOTIFICATION_DATA: 38,
  NOTIF_CONFIG_DATA: 39,
  RING_RESET: 40,
} as const;

/** Device IDs (section 5) of the devices rxvmm cares about. */
export const VirtioDeviceType = {
  NET: 1,
  BLOCK: 2,
  CONSOLE: 3,
  ENTROPY: 4,
  BALLOON: 5,
  VSOCK: 19,
} as const;

/** `1n << bit` as a feature mask. */
export function featureBit(bit: number): bigint {
  return 1n << BigInt(bit);
}

/** True when `features` has bit number `bit` set. */
export function hasFeature(features: bigint, bit: number): boolean {
  return (features & featureBit(bit)) !== 0n;
}
