/** Messages between a VcpuRunner and its worker (internal). */
import type { VcpuExit } from '@rxvmm/kvm';
import type { GuestRamDescriptor } from '../memory.js';
import type { VcpuHandover } from '../vcpu.js';
import type { LinuxVcpuState } from '../vcpu-state.js';

export interface RunnerInit {
  vmFd: number;
  vcpuId: number;
  mmapSize: number;
  memory: GuestRamDescriptor[];
  handlerUrl: string;
  data: unknown;
  counters: SharedArrayBuffer;
  kickSlot: SharedArrayBuffer;
  /** Int32Array: [STOP, SAVE_STATE, PAUSE, TAKE, GIVEN] */
  control: SharedArrayBuffer;
  /**
   * `earlyRun`: the vCPU exists and runs on the starting thread; the worker takes it (TAKE, a kick
   * through `kickSlot`, then GIVEN) instead of creating one.
   */
  early?: { handover: VcpuHandover; kickSlot: SharedArrayBuffer };
  /** Loaded into the vCPU after the handler's `setup`, before the first KVM_RUN (a restored snapshot). */
  restoreState?: LinuxVcpuState;
}

/**
 * The worker's `workerData`: everything (`init`), or only the handler when the worker is started
 * ahead of its VM (`VcpuRunner.prepare`); `init` then comes in an 'init' message.
 */
export interface WorkerBoot {
  handlerUrl: string;
  init?: RunnerInit;
}

export const CONTROL_STOP = 0;
/** Set with STOP: take the vCPU's state before closing it (`stop({ saveState: true })`). */
export const CONTROL_SAVE_STATE = 1;
/** The loop parks (vCPU out of KVM_RUN, kept) until cleared: `pause()` / `resume()`. */
export const CONTROL_PAUSE = 2;
/** earlyRun: set by the worker when it is ready for the vCPU (the starting thread then hands it over). */
export const CONTROL_TAKE = 3;
/** earlyRun: how the starting thread let go of the vCPU (a GIVEN_* value; 0 while it still runs it). */
export const CONTROL_GIVEN = 4;
export const CONTROL_WORDS = 5;

/** Handed over between runs: the worker's first `run()` enters the guest. */
export const GIVEN_IDLE = 1;
/** Handed over with an exit `earlyRun.onExit` declined: the worker's handler answers it first. */
export const GIVEN_WITH_EXIT = 2;
/** The early run failed: there is no vCPU to take (the starting thread closed it). */
export const GIVEN_NOTHING = 3;

/** Why a run ended. */
export type RunEndReason =
  /** `runner.stop()` (or the VM closing). */
  | 'stop-requested'
  /** The handler returned `'stop'`. */
  | 'handler-stop'
  /** An exit that ends a run by default (hlt, shutdown, internal-error, fail-entry, unknown): see `exit`. */
  | 'exit'
  /** The handler (or setup) threw: see `error`. */
  | 'error';

/** An error carried across threads as plain data (message, errno `.code`, stack). */
export interface SerializedError {
  message: string;
  code?: string;
  stack?: string;
}

/** How a vCPU run ended (`runner.done`, `runner.stop()`). */
export interface VcpuRunResult {
  reason: RunEndReason;
  /** The last exit (a copy). */
  exit?: VcpuExit;
  error?: SerializedError;
  /** With `stop({ saveState: true })`: the vCPU's state when it stopped (nothing ran after it). */
  state?: LinuxVcpuState;
  /** Why the state could not be taken, if it could not. */
  stateError?: SerializedError;
}

export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'post'; message: unknown }
  | { type: 'done'; result: VcpuRunResult }
  /** The loop parked after `pause()`: the vCPU is out of KVM_RUN until resumed or stopped. */
  | { type: 'paused' }
  /** The answer to 'save-state'. */
  | { type: 'state'; id: number; state?: LinuxVcpuState; error?: SerializedError };

export type MainMessage =
  | { type: 'message'; message: unknown }
  | { type: 'init'; init: RunnerInit }
  /** Wakes a parked loop to look at the control words again (resume or stop). */
  | { type: 'wake' }
  /** Take the vCPU's state now (the loop must be parked). */
  | { type: 'save-state'; id: number };

export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { message: error.message, stack: error.stack, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { message: String(error) };
}
