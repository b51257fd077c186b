export {
  type BlockBackend,
  FileBackend,
  type FileBackendOptions,
  isSyncBlockBackend,
  isSyncRangesBlockBackend,
  MAX_RANGES,
  type SyncBlockBackend,
  type SyncRangesBlockBackend,
} from './backend.js';
export {
  type BlkConfig,
  BlkConfigOffset,
  type BlkGeometry,
  type BlkTopology,
  blkConfig,
  decodeBlkConfig,
  encodeBlkConfig,
  VIRTIO_BLK_CONFIG_SIZE,
} from './config.js';
export * from './constants.js';
export { advanceBuffers, blockDeviceBytes, blockDeviceSizePath } from './iovec.js';
export {
  BlockRequestHandler,
  type BlockRequestHandlerOptions,
  type BlockRequestResult,
  type BlockRequestStats,
  DEFAULT_SEG_MAX,
  DEFAULT_SIZE_MAX,
} from './request-handler.js';
export { byteAddress, segmentRange } from './segments.js';
export {
  BLOCK_DEVICE_STATE_VERSION,
  BlockDevice,
  type BlockDeviceOpenOptions,
  type BlockDeviceOptions,
  type BlockDeviceState,
  type CompletionListener,
  VirtioBlk,
  type VirtioBlkFeatureOptions,
  type VirtioBlkOpenOptions,
  type VirtioBlkOptions,
  virtioBlkFeatures,
} from './virtio-blk.js';
