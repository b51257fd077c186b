/** Device IDs (virtio 1.2 section 5) of the devices rxvmm cares about. */
export const VirtioDeviceType = {
  NET: 1,
  BLOCK: 2,
  CONSOLE: 3,
  ENTROPY: 4,
  BALLOON: 5,
  VSOCK: 19,
} as const;
