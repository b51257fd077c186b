export * from './constants.js';
export type {
  ActivatedQueue,
  SharedMemoryRegion,
  VirtioActivation,
  VirtioActivationInfo,
  VirtioDevice,
} from './device.js';
export { ExternalDevice, type ExternalDeviceEvents, type ExternalDeviceOptions } from './external-device.js';
export {
  type GuestRangeCheck,
  type QueueLayoutOptions,
  queueAreaSizes,
  queueLayoutError,
} from './queue-layout.js';
export {
  type NeedsResetEvent,
  type VirtioInterrupt,
  VirtioMmioTransport,
  type VirtioMmioTransportEvents,
  type VirtioMmioTransportOptions,
} from './transport.js';
