export type {
  ActivatedQueue,
  SharedMemoryRegion,
  VirtioActivation,
  VirtioActivationInfo,
  VirtioDevice,
} from './device.js';
export { VirtioDeviceType } from './device-type.js';
export { featureBit, hasFeature, VirtioFeature } from './features.js';
export * from './queue-layout.js';
export { DeviceStatus } from './status.js';
