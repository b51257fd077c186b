/**
 * The guest's own ports: HELLO (its first instruction) and DONE (its last).
 * Answered wherever the vCPU runs at the time: the early run on the main
 * thread or the exit handler on the vCPU worker.
 */
import type { VcpuExit } from '@rxvmm/kvm';
import { DONE_PORT, HELLO_PORT } from '../guest/abi.js';
import { nowMs, type SharedState, SharedTime } from './layout.js';

/** True if `exit` is the guest's HELLO; stamps its time (the first one only). */
export function answerHello(exit: VcpuExit, shared: SharedState): boolean {
  if (exit.kind !== 'io' || exit.direction !== 'out' || exit.port !== HELLO_PORT) return false;
  if (shared.times[SharedTime.hello] === 0) shared.times[SharedTime.hello] = nowMs();
  return true;
}

/** True if `exit` is the guest's DONE (the run ends there); stamps its time. */
export function answerDone(exit: VcpuExit, shared: SharedState): boolean {
  if (exit.kind !== 'io' || exit.direction !== 'out' || exit.port !== DONE_PORT) return false;
  shared.times[SharedTime.done] = nowMs();
  return true;
}
