/**
 * The vCPU worker's files, as the build bundles them (scripts/bundle.mjs; the same URLs from src/vmm/
 * and dist/vmm/): the exit handler VcpuRunner loads inside the worker, and the worker's entry.
 */
export const EXIT_HANDLER_URL = new URL('../../dist/bundle/exit-handler.cjs', import.meta.url);
export const VCPU_WORKER_URL = new URL('../../dist/bundle/vcpu-worker.cjs', import.meta.url);
