/**
 * The early run: the guest's first instructions run on the thread that starts
 * the runner while Node still boots the vCPU's worker (~20 ms here, the largest
 * step before a guest's first instruction). The starting thread creates the
 * vCPU and runs it until an exit it does not answer, or until the worker is
 * ready; then the worker adopts the vCPU, answers that exit and runs it on.
 *
 * Hand-over, through the runner's control words: the worker sets TAKE once
 * its handler is loaded and kicks the starting thread out of KVM_RUN (the
 * vCPU's kick slot, published from that thread); that thread leaves the loop
 * between runs, lets go of the vCPU and sets GIVEN, which the worker waits on.
 * That wait is `Atomics.wait`, once per runner: the worker has nothing else to
 * do until then, and the starting thread leaves KVM_RUN within a kick's time.
 */

import { errnoError } from '@rxvmm/errno';
import type { VcpuExit } from '@rxvmm/kvm';
import { Kicker } from '../kick.js';
import { LinuxVcpu, type VcpuHandover } from '../vcpu.js';
import type { ExitCounterWriter } from './counters.js';
import { CONTROL_GIVEN, CONTROL_TAKE, GIVEN_IDLE, GIVEN_NOTHING, GIVEN_WITH_EXIT } from './protocol.js';

/** `VcpuRunnerOptions.earlyRun`: what the starting thread does with the vCPU before its worker takes it. */
export interface EarlyRun {
  /** Sets the new vCPU up (registers, ...) before its first run. The handler's `setup` runs later, in the worker. */
  setup?(vcpu: LinuxVcpu): void;
  /**
   * Each exit of the early run (kicks aside): true when answered here (the guest runs on), false
   * to stop and leave it to the worker's handler, which answers it first. Runs with this
   * thread's event loop stopped: keep it to what needs nothing else (a port, a stamp). Only the
   * worker's kick ends a run of a guest that never exits: should that worker die before it is
   * ready, such a guest keeps this thread in KVM_RUN, so decline an exit the guest will make soon
   * (its first device access).
   */
  onExit(exit: VcpuExit): boolean;
}

/** The starting thread's side: a new vCPU set up, with its kick slot for the worker. */
export function createEarlyVcpu(
  vmFd: number,
  id: number,
  mmapSize: number,
  early: EarlyRun,
): { vcpu: LinuxVcpu; handover: VcpuHandover; kickSlot: SharedArrayBuffer } {
  const vcpu = new LinuxVcpu(vmFd, id, mmapSize);
  try {
    early.setup?.(vcpu);
    const kickSlot = vcpu.kickSlot();
    const handover = { id, fd: vcpu.fd, runAddress: vcpu.runAddress, runSize: vcpu.runSize };
    return { vcpu, handover, kickSlot };
  } catch (error) {
    vcpu.close();
    throw error;
  }
}

/**
 * Runs the vCPU here until the worker takes it or `early.onExit` declines an exit, then hands it
 * over (GIVEN). If a run or `onExit` throws, the vCPU is closed, the worker told there is nothing
 * to take, and the error rethrown.
 */
export function runEarly(
  vcpu: LinuxVcpu,
  early: EarlyRun,
  control: Int32Array,
  counters: ExitCounterWriter,
): void {
  let given = GIVEN_IDLE;
  try {
    while (Atomics.load(control, CONTROL_TAKE) === 0) {
      const exit = vcpu.run();
      // The hand-over's kick is the runner's own business: not counted (exit counts stay the guest's).
      if (exit.kind === 'intr') continue;
      counters.count(exit);
      if (!early.onExit(exit)) {
        given = GIVEN_WITH_EXIT;
        break;
      }
    }
  } catch (error) {
    given = GIVEN_NOTHING;
    throw error;
  } finally {
    letGo(vcpu, control, given);
  }
}

/** No early run after all (its worker failed already): closes the vCPU and tells the worker so. */
export function cancelEarlyRun(vcpu: LinuxVcpu, control: Int32Array): void {
  letGo(vcpu, control, GIVEN_NOTHING);
}

function letGo(vcpu: LinuxVcpu, control: Int32Array, given: number): void {
  // Both retire the kick slot: no kick reaches this thread after it.
  if (given === GIVEN_NOTHING) vcpu.close();
  else vcpu.handOver();
  Atomics.store(control, CONTROL_GIVEN, given);
  Atomics.notify(control, CONTROL_GIVEN);
}

/**
 * The worker's side: asks for the vCPU (TAKE and a kick), waits until the starting thread lets go
 * and adopts it. `pendingExit`: the exit it left for this thread's handler.
 */
export function takeEarlyVcpu(
  vmFd: number,
  early: { handover: VcpuHandover; kickSlot: SharedArrayBuffer },
  control: Int32Array,
): { vcpu: LinuxVcpu; pendingExit: boolean } {
  Atomics.store(control, CONTROL_TAKE, 1);
  const kicker = new Kicker(early.kickSlot);
  kicker.kick(); // false once that thread let go already (it declined an exit): nothing to interrupt
  kicker.dispose();
  // Short: the starting thread leaves KVM_RUN at the kick and returns between two runs.
  Atomics.wait(control, CONTROL_GIVEN, 0);
  const given = Atomics.load(control, CONTROL_GIVEN);
  if (given === GIVEN_NOTHING)
    throw errnoError('EIO', 'the early run failed on the starting thread (it closed the vCPU)');
  return { vcpu: LinuxVcpu.adopt(vmFd, early.handover), pendingExit: given === GIVEN_WITH_EXIT };
}
