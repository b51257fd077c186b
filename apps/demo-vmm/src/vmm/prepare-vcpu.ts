/**
 * Starts the demo's vCPU worker ahead of its VM (`prepareVcpu` of `@rxvmm/kvm-linux/prepare`, which
 * loads neither the native addon nor the runner): Node boots it and it loads the bundled runner and
 * exit handler (two CommonJS files) while the main thread loads the rest and sets KVM up.
 */
import { type PreparedVcpu, prepareVcpu as prepare } from '@rxvmm/kvm-linux/prepare';
import { EXIT_HANDLER_URL, VCPU_WORKER_URL } from './exit-handler-url.js';

export const VCPU_WORKER_NAME = 'rxvmm-demo-vcpu0';

export function prepareVcpu(): PreparedVcpu {
  return prepare({ handler: EXIT_HANDLER_URL, worker: VCPU_WORKER_URL, name: VCPU_WORKER_NAME });
}
