/**
 * VcpuRunner: runs one vCPU of a LinuxVm on a worker thread.
 *
 * - The worker creates the vCPU (KVM wants vCPU ioctls on the creating thread)
 *   and imports the VMM's handler module (`handler`, a module URL), so every
 *   exit is answered inside the worker with no thread hop.
 * - Exit counters live in a SharedArrayBuffer (`counters`), readable here at any time.
 * - `kick()` interrupts KVM_RUN (immediate_exit + SIGUSR2 to the worker thread);
 *   `stop()` asks the loop to end, kicks, and resolves when the worker has
 *   closed the vCPU and exited (no thread, fd or mapping left behind).
 * - Guest RAM stays mapped until the worker is gone, even if the VM is closed first.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type TransferListItem, Worker } from 'node:worker_threads';
import { errnoError } from '@rxvmm/errno';
import { type Observable, Subject } from 'rxjs';
import { KICK_SLOT_BYTES, Kicker } from '../kick.js';
import type { LinuxVm } from '../vm.js';
import { createCounterBuffer, ExitCounters } from './counters.js';
import {
  CONTROL_STOP,
  CONTROL_WORDS,
  type MainMessage,
  type RunnerInit,
  type VcpuRunResult,
  type WorkerMessage,
} from './protocol.js';

/** The built worker entry (the same URL from src/ and from dist/). */
export const VCPU_WORKER_URL = new URL('../../dist/runner/vcpu-worker.js', import.meta.url);

/**
 * The worker runs built JavaScript: drop `--conditions` flags inherited from
 * the parent (e.g. `development` under vitest), which would point it at .ts sources.
 */
function workerExecArgv(): string[] {
  const out: string[] = [];
  const args = process.execArgv;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--conditions' || arg === '-C') i++;
    else if (!arg.startsWith('--conditions=')) out.push(arg);
  }
  return out;
}

export interface VcpuRunnerOptions<Data = unknown> {
  vm: LinuxVm;
  /** vCPU id (KVM_CREATE_VCPU). */
  id: number;
  /** URL (or file URL string) of an ES module exporting a `VcpuHandler` as default or `handler`. */
  handler: URL | string;
  /** Given to the handler as `ctx.data` (structured clone; SharedArrayBuffers are shared). */
  data?: Data;
  /** Worker name shown in debuggers. */
  name?: string;
}

export class VcpuRunner {
  readonly id: number;
  /** Exit counters, written by the worker, readable at any time. */
  readonly counters: ExitCounters;
  /** Resolves when the run has ended and the worker thread has exited. */
  readonly done: Promise<VcpuRunResult>;
  readonly #worker: Worker;
  readonly #kicker: Kicker;
  readonly #control: Int32Array;
  readonly #messages = new Subject<unknown>();
  #result: VcpuRunResult | undefined;

  private constructor(
    worker: Worker,
    id: number,
    counters: SharedArrayBuffer,
    kickSlot: SharedArrayBuffer,
    control: SharedArrayBuffer,
    release: () => void,
    ready: { resolve(): void; reject(e: Error): void },
  ) {
    this.id = id;
    this.#worker = worker;
    this.counters = new ExitCounters(counters);
    this.#kicker = new Kicker(kickSlot);
    this.#control = new Int32Array(control);
    this.done = new Promise<VcpuRunResult>((resolve) => {
      let isReady = false;
      worker.on('message', (msg: WorkerMessage) => {
        if (msg.type === 'ready') {
          isReady = true;
          ready.resolve();
        } else if (msg.type === 'post') this.#messages.next(msg.message);
        else if (msg.type === 'done') {
          this.#result = msg.result;
          // The vCPU is closed and the loop is over; handles the handler may have left open must not keep the thread.
          void worker.terminate();
        }
      });
      worker.on('error', (error) => {
        this.#result ??= { reason: 'error', error: { message: error.message, stack: error.stack } };
      });
      worker.once('exit', (code) => {
        // A worker killed by an uncaught exception never ran its cleanup: close its vCPU from here.
        if (this.#kicker.salvage()) {
          this.#result ??= { reason: 'error', error: { message: `vCPU worker died (exit code ${code})` } };
        }
        this.#kicker.dispose();
        release();
        const result = this.#result ?? {
          reason: 'error',
          error: { message: `vCPU worker exited with code ${code}` },
        };
        if (!isReady) {
          const e = errnoError(
            'EIO',
            `vCPU ${id} failed to start: ${result.error?.message ?? result.reason}`,
          );
          if (result.error?.code) e.code = result.error.code;
          ready.reject(e);
        }
        this.#messages.complete();
        resolve(result);
      });
    });
  }

  /**
   * Starts a vCPU on a new worker: creates it there, loads the handler module
   * there, runs its `setup`, and resolves once the guest is about to run.
   * Rejects if any of that fails (the worker is gone by then).
   */
  static start<Data>(options: VcpuRunnerOptions<Data>): Promise<VcpuRunner> {
    const { vm, id } = options;
    if (!existsSync(fileURLToPath(VCPU_WORKER_URL))) {
      return Promise.reject(
        errnoError(
          'ENOENT',
          `${fileURLToPath(VCPU_WORKER_URL)} is missing: build @rxvmm/kvm-linux first (pnpm build)`,
        ),
      );
    }
    const counters = createCounterBuffer();
    const kickSlot = new SharedArrayBuffer(KICK_SLOT_BYTES);
    const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
    const init: RunnerInit = {
      vmFd: vm.fd,
      vcpuId: id,
      mmapSize: vm.vcpuMmapSize,
      memory: vm.describeMemory(),
      handlerUrl: String(options.handler),
      data: options.data,
      counters,
      kickSlot,
      control,
    };
    let runner!: VcpuRunner;
    const release = vm.attachUser({ stop: () => runner.stop() });
    return new Promise<VcpuRunner>((resolve, reject) => {
      let worker: Worker;
      try {
        worker = new Worker(VCPU_WORKER_URL, {
          workerData: init,
          name: options.name ?? `vcpu-${id}`,
          execArgv: workerExecArgv(),
        });
      } catch (error) {
        release();
        reject(error);
        return;
      }
      runner = new VcpuRunner(worker, id, counters, kickSlot, control, release, {
        resolve: () => resolve(runner),
        reject,
      });
    });
  }

  /** Messages the handler sent with `ctx.post()`; completes when the worker exits. */
  get messages$(): Observable<unknown> {
    return this.#messages.asObservable();
  }

  /** The result once done (undefined while running). */
  get result(): VcpuRunResult | undefined {
    return this.#result;
  }

  /** Interrupts KVM_RUN now (the handler's `onKick` runs); false if the vCPU is gone. */
  kick(): boolean {
    return this.#kicker.kick();
  }

  /** Kicks sent through this runner's slot. */
  get kicks(): number {
    return this.#kicker.kicks;
  }

  /** Sends a message to the handler's `onMessage`, and kicks so the worker sees it promptly. */
  post(message: unknown, transfer?: readonly TransferListItem[]): void {
    const msg: MainMessage = { type: 'message', message };
    this.#worker.postMessage(msg, transfer as TransferListItem[] | undefined);
    this.kick();
  }

  /** Asks the run to end, kicks the vCPU, and resolves when the worker has exited. */
  stop(): Promise<VcpuRunResult> {
    Atomics.store(this.#control, CONTROL_STOP, 1);
    this.kick();
    return this.done;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
