/**
 * Constants of the virtio-mmio transport (virtio 1.2, section 4.2). The
 * transport-independent ones (status bits, feature bits, device IDs) live in
 * `@rxvmm/virtio`.
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
/** The name of one `MmioRegister`. */
export type MmioRegisterName = keyof typeof MmioRegister;

/** InterruptStatus / InterruptACK bits (section 4.2.2). */
export const InterruptBit = {
  /** Used Buffer Notification: the device used a buffer in at least one queue. */
  USED_BUFFER: 1,
  /** Configuration Change Notification (also sent with DEVICE_NEEDS_RESET). */
  CONFIG_CHANGE: 2,
} as const;
