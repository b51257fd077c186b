export { ChainBuffer, type DescriptorChain, readSegments, type Segment, writeSegments } from './chain.js';
export * from './constants.js';
export { VirtqueueError, type VirtqueueErrorReason } from './errors.js';
// Guest memory has its own package (the hypervisor side builds it too); re-exported for ring users.
export {
  GuestMemory,
  GuestMemoryError,
  type GuestMemoryRegionInit,
  type HostRegion,
  MAX_GUEST_PHYS,
} from '@rxvmm/guest-memory';
export { packedNeedEvent, vringNeedEvent } from './need-event.js';
export { PackedDriver } from './packed-driver.js';
export type { ChainDevice } from './chain-device.js';
export { DEVICE_SERVER_STATE_VERSION, DeviceServer, type DeviceServerState } from './device-server.js';
export { openQueue, restoreQueue } from './open-queue.js';
export { type PackedDescriptor, PackedQueue } from './packed-queue.js';
export type { QueueConfig } from './queue-config.js';
export {
  type BrokenQueueState,
  type PackedQueueState,
  QUEUE_STATE_VERSION,
  type QueueConfigState,
  type QueueState,
  type SplitQueueState,
} from './queue-state.js';
export {
  type ChainBufferHandler,
  type ChainHandler,
  type ServeQueueOptions,
  serveQueue,
} from './serve-queue.js';
export { type AddOptions, SplitDriver, type UsedElement } from './split-driver.js';
export { SplitQueue } from './split-queue.js';
export type { Virtqueue } from './virtqueue.js';
