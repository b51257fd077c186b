/** Device status bits (virtio 1.2 section 2.1), written by the driver, read back by the transport. */
export const DeviceStatus = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  /** Set by the device when it met an error it cannot recover from; cleared by reset. */
  DEVICE_NEEDS_RESET: 64,
  FAILED: 128,
} as const;
