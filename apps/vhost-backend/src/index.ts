/**
 * @rxvmm/vhost-backend: the rxvmm-vhost-blk program (a vhost-user-blk
 * back-end) and its pieces, for embedding or testing.
 */
export { type BlkDeviceOptions, openBlkDevice } from './blk-device.js';
export { CAPABILITIES, type CliIo, type RunningBackend, run, USAGE } from './run.js';
