/**
 * `@rxvmm/virtio-ring/test`: mock virtio drivers over plain (or shared)
 * ArrayBuffers, for testing devices without a guest.
 */
export { RangeAllocator } from './allocator.js';
export {
  type MockBuffer,
  type MockDriverOptions,
  MockPackedDriver,
  MockSplitDriver,
  type MockUsed,
} from './mock-driver.js';
