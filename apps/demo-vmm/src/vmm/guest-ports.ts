/**
 * The guest's milestones: HELLO (its first instruction), its first access to
 * the device, DONE (its last instruction). Stamped in the shared state wherever
 * the vCPU runs at the time (SoftKvm's loop, the early run on the main thread or
 * the exit handler on the vCPU worker), and read back once for the report.
 */
import type { VcpuExit } from '@rxvmm/kvm';
import { DONE_PORT, HELLO_PORT } from '../guest/abi.js';
import { MMIO_BASE, MMIO_SIZE, nowMs, type SharedState, SharedTime, sinceProcessStart } from './layout.js';

const MMIO_END = MMIO_BASE + BigInt(MMIO_SIZE);

/** True for an address in the device's register window. */
export function inDeviceWindow(addr: bigint): boolean {
  return addr >= MMIO_BASE && addr < MMIO_END;
}

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

/** Stamps the guest's first access to the device window (later ones and other addresses: nothing). */
export function noteDeviceAccess(addr: bigint, shared: SharedState): void {
  if (inDeviceWindow(addr) && shared.times[SharedTime.device] === 0)
    shared.times[SharedTime.device] = nowMs();
}

/** The stamps as the report gives them: ms since process start, and HELLO → DONE in seconds. */
export function guestMilestones(shared: SharedState): {
  startupMs: number | undefined;
  firstDeviceAccessMs: number | undefined;
  seconds: number;
} {
  const hello = shared.times[SharedTime.hello] ?? 0;
  const device = shared.times[SharedTime.device] ?? 0;
  const done = shared.times[SharedTime.done] ?? 0;
  return {
    startupMs: hello > 0 ? sinceProcessStart(hello) : undefined,
    firstDeviceAccessMs: device > 0 ? sinceProcessStart(device) : undefined,
    seconds: hello > 0 && done > 0 ? (done - hello) / 1000 : 0,
  };
}
