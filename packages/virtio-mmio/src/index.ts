// The spec core (status and feature bits, device IDs, the VirtioDevice contract, queue-layout
// rules) is `@rxvmm/virtio`; this package is one transport of it.
export * from './constants.js';
export { ExternalDevice, type ExternalDeviceEvents, type ExternalDeviceOptions } from './external-device.js';
export {
  type NeedsResetEvent,
  type VirtioInterrupt,
  VirtioMmioTransport,
  type VirtioMmioTransportEvents,
  type VirtioMmioTransportOptions,
} from './transport.js';
export {
  type QueueRegistersState,
  TRANSPORT_STATE_VERSION,
  type VirtioMmioTransportState,
} from './transport-state.js';
