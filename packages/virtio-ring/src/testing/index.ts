/**
 * `@rxvmm/virtio-ring/testing`: mock virtio drivers over plain (or shared)
 * ArrayBuffers, for testing devices without a guest, and an echo device that
 * runs in every hosting mode.
 */
export { RangeAllocator } from './allocator.js';
export {
  type MockBuffer,
  type MockDriverOptions,
  MockPackedDriver,
  MockSplitDriver,
  type MockUsed,
} from './mock-driver.js';
export { ECHO_DEVICE_TYPE, ECHO_MAX_REQUEST, EchoDevice, type EchoDeviceOptions } from './echo-device.js';
