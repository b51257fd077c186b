/**
 * Starts the demo's vCPU worker ahead of its VM (`VcpuRunner.prepare`): Node boots it and it loads
 * the bundled runner and exit handler (two CommonJS files) while the main thread sets KVM up.
 */
import { type PreparedVcpu, VcpuRunner } from '@rxvmm/kvm-linux';
import { EXIT_HANDLER_URL, VCPU_WORKER_URL } from './exit-handler-url.js';

export const VCPU_WORKER_NAME = 'rxvmm-demo-vcpu0';

export function prepareVcpu(): PreparedVcpu {
  return VcpuRunner.prepare({ handler: EXIT_HANDLER_URL, worker: VCPU_WORKER_URL, name: VCPU_WORKER_NAME });
}
