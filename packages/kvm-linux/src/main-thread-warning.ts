/**
 * The warning for a vCPU run on the main thread of a VM wired for events.
 * KVM_RUN blocks its thread until the guest exits; on the main thread that
 * is the event loop, so eventfd `signals$` (ioeventfd doorbells), timers and
 * I/O callbacks stop meanwhile, and a guest that sleeps in `hlt` until one of
 * them interrupts it sleeps forever: the program hangs without a word.
 */
import { isMainThread } from 'node:worker_threads';

/** `process.emitWarning` code (silence it with `node --disable-warning=RXVMM_KVM_RUN_ON_MAIN_THREAD`). */
export const MAIN_THREAD_RUN_WARNING = 'RXVMM_KVM_RUN_ON_MAIN_THREAD';

/** `'warn'` (default): warn once per process; `'allow'`: this program runs vCPUs on the main thread on purpose. */
export type MainThreadRun = 'warn' | 'allow';

let warned = false;

/** True when a vCPU created here with this setting should be checked at `run()`. */
export function mainThreadCheckWanted(setting: MainThreadRun | undefined): boolean {
  return isMainThread && setting !== 'allow' && !warned;
}

/** Emits the warning once per process; `wiring` names what the VM has that needs the event loop. */
export function warnMainThreadRun(wiring: string): void {
  if (warned) return;
  warned = true;
  process.emitWarning(
    `vcpu.run() on the main thread of a VM with ${wiring}: KVM_RUN blocks this thread, so its event ` +
      'loop stops while the guest runs (eventfd signals$, timers and I/O callbacks wait, and a guest ' +
      'sleeping in hlt until they interrupt it never wakes). Run the vCPU on a worker with VcpuRunner, ' +
      "or pass { mainThreadRun: 'allow' } to openKvm() or vm.createVcpu() when this loop needs no event loop.",
    { code: MAIN_THREAD_RUN_WARNING },
  );
}
