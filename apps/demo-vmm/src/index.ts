/**
 * @rxvmm/demo-vmm: a VMM that runs a small long-mode guest driving a
 * virtio-blk device through ioeventfd and irqfd (CLI: rxvmm-demo).
 */

export { DiskError, prepareDisk } from './disk.js';
export * from './guest/abi.js';
export { type DemoOptions, parseOptions, USAGE, UsageError } from './options.js';
export { formatSummary } from './report.js';
export { type BackendChoice, chooseBackend, type DemoFailure, type DemoReport, runDemo } from './run.js';
export { SetupError } from './setup-error.js';
