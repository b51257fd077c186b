/** The built exit handler (same URL from src/vmm/ and dist/vmm/): VcpuRunner loads it inside the vCPU worker. */
export const EXIT_HANDLER_URL = new URL('../../dist/vmm/exit-handler.js', import.meta.url);
