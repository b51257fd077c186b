/**
 * VcpuRunner: runs one vCPU of a LinuxVm on a worker thread.
 *
 * - The worker creates the vCPU (KVM asks for vCPU ioctls on the creating thread)
 *   and imports the VMM's handler module (`handler`, a module URL), so every
 *   exit is answered inside the worker with no thread hop. With `earlyRun` the
 *   guest starts here instead and the worker adopts the vCPU (early-run.ts).
 * - Exit counters live in a SharedArrayBuffer (`counters`), readable here at any time.
 * - `kick()` interrupts KVM_RUN (immediate_exit + SIGUSR2 to the worker thread);
 *   `stop()` asks the loop to end, kicks, and resolves when the worker has
 *   closed the vCPU and exited (no thread, fd or mapping left behind).
 * - Guest RAM stays mapped until the worker is gone, even if the VM is closed first.
 */
import type { TransferListItem, Worker } from 'node:worker_threads';
import { errnoError } from '@rxvmm/errno';
import type { Observable } from 'rxjs';
import { KICK_SLOT_BYTES, Kicker } from '../kick.js';
import type { LinuxVcpuState } from '../vcpu-state.js';
import type { LinuxVm } from '../vm.js';
import { createCounterBuffer, ExitCounters, ExitCounterWriter } from './counters.js';
import { cancelEarlyRun, createEarlyVcpu, type EarlyRun, runEarly } from './early-run.js';
import { MessageListeners } from './listeners.js';
import { type PreparedVcpu, type PrepareVcpuOptions, prepareVcpu, spawnVcpuWorker } from './prepared.js';
import {
  CONTROL_PAUSE,
  CONTROL_SAVE_STATE,
  CONTROL_STOP,
  CONTROL_WORDS,
  type MainMessage,
  type RunnerInit,
  type VcpuRunResult,
  type WorkerMessage,
} from './protocol.js';

export { VCPU_WORKER_URL } from './prepared.js';

/** Options of `VcpuRunner.start()`. */
export interface VcpuRunnerOptions<Data = unknown> {
  vm: LinuxVm;
  /** vCPU id (KVM_CREATE_VCPU). */
  id: number;
  /**
   * URL (or file URL string) of an ES module exporting a `VcpuHandler` as default or `handler`.
   * Optional with `prepared` (which already loads it; if both are given they must match).
   */
  handler?: URL | string;
  /** A worker started earlier with `VcpuRunner.prepare()` (taken by this call). */
  prepared?: PreparedVcpu;
  /** Given to the handler as `ctx.data` (structured clone; SharedArrayBuffers are shared). */
  data?: Data;
  /** Worker name shown in debuggers. */
  name?: string;
  /**
   * A saved vCPU state (`stop({ saveState: true })` of an earlier run, possibly in another
   * process) loaded into the new vCPU after the handler's `setup` and before its first KVM_RUN.
   * Restore the VM first (`restoreWiring`, RAM, `restoreState`). A state the kernel refuses
   * fails the start.
   */
  restoreState?: LinuxVcpuState;
  /**
   * Enters the guest on the calling thread while Node boots the worker (start-up): the vCPU is
   * created here, `earlyRun.setup` sets it up, and `start()` runs it here, synchronously, until
   * `earlyRun.onExit` declines an exit or the worker is ready (it loaded the handler); the worker
   * then adopts the vCPU, runs the handler's `setup`, answers the declined exit and runs on. The
   * guest's work up to that exit overlaps the worker's boot; this thread's event loop waits
   * meanwhile, so decline what needs it. The guest has run before the handler's `setup`: set the
   * registers in `earlyRun.setup`, not there. Not with `restoreState` (a restored vCPU resumes on
   * its worker).
   */
  earlyRun?: EarlyRun;
}

/**
 * Why a runner did not start, with the worker's `.code` (an errno name, or the module loader's
 * `ERR_...` when the handler could not be imported) leading the message, EIO when it had none.
 */
function startError(id: number, result: VcpuRunResult): Error {
  const code = result.error?.code;
  let why = result.error?.message ?? result.reason;
  if (code === undefined) return errnoError('EIO', `vCPU ${id} failed to start: ${why}`);
  if (why.startsWith(`${code}: `)) why = why.slice(code.length + 2);
  const error = new Error(`${code}: vCPU ${id} failed to start: ${why}`) as Error & { code: string };
  error.code = code;
  return error;
}

/** A vCPU on its own worker thread: the worker creates it, imports the VMM's exit-handler module and loops on KVM_RUN, so the main thread's event loop stays free (ioeventfd `signals$`, timers, I/O). */
export class VcpuRunner {
  readonly id: number;
  /** Exit counters, written by the worker, readable at any time. */
  readonly counters: ExitCounters;
  /** Resolves when the run has ended and the worker thread has exited. */
  readonly done: Promise<VcpuRunResult>;
  readonly #worker: Worker;
  readonly #kicker: Kicker;
  readonly #control: Int32Array;
  readonly #messages = new MessageListeners();
  #result: VcpuRunResult | undefined;
  /** Resolvers of pause() calls, settled by the worker's 'paused' (or its end). */
  #pausing: (() => void)[] = [];
  /** Pending saveState() calls by request id. */
  readonly #stateRequests = new Map<number, { resolve(s: LinuxVcpuState): void; reject(e: Error): void }>();
  #nextStateRequest = 0;

  private constructor(
    worker: Worker,
    id: number,
    counters: SharedArrayBuffer,
    kickSlot: SharedArrayBuffer,
    control: SharedArrayBuffer,
    release: () => void,
    ready: { resolve(): void; reject(e: Error): void },
    earlyError?: Error,
  ) {
    this.id = id;
    this.#worker = worker;
    this.counters = new ExitCounters(counters);
    this.#kicker = new Kicker(kickSlot);
    this.#control = new Int32Array(control);
    if (earlyError)
      this.#result = { reason: 'error', error: { message: earlyError.message, stack: earlyError.stack } };
    this.done = new Promise<VcpuRunResult>((resolve) => {
      let isReady = false;
      worker.on('message', (msg: WorkerMessage) => {
        if (msg.type === 'ready') {
          isReady = true;
          ready.resolve();
        } else if (msg.type === 'post') this.#messages.emit(msg.message);
        else if (msg.type === 'paused') for (const resolve of this.#pausing.splice(0)) resolve();
        else if (msg.type === 'state') {
          const request = this.#stateRequests.get(msg.id);
          this.#stateRequests.delete(msg.id);
          if (msg.state) request?.resolve(msg.state);
          else request?.reject(remoteError(msg.error));
        } else if (msg.type === 'done') {
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
        if (!isReady) ready.reject(startError(id, result));
        for (const resolve of this.#pausing.splice(0)) resolve();
        for (const request of this.#stateRequests.values())
          request.reject(errnoError('EBADF', `vCPU ${id} is gone (the runner ended)`));
        this.#stateRequests.clear();
        this.#messages.complete();
        resolve(result);
      });
    });
  }

  /**
   * Starts a vCPU on a new worker: creates it there, loads the handler module
   * there, runs its `setup`, and resolves once the guest is about to run.
   * Rejects if any of that fails (the worker is gone by then). With `earlyRun`
   * the guest has run here first, before this returns.
   */
  static start<Data>(options: VcpuRunnerOptions<Data>): Promise<VcpuRunner> {
    const { vm, id, prepared, earlyRun } = options;
    if (earlyRun && options.restoreState)
      return Promise.reject(
        errnoError('EINVAL', 'earlyRun boots a vCPU; a restored one (restoreState) resumes on its worker'),
      );
    const handlerUrl = prepared?.handlerUrl ?? (options.handler === undefined ? '' : String(options.handler));
    if (handlerUrl === '')
      return Promise.reject(errnoError('EINVAL', 'VcpuRunner.start needs a handler (or a prepared worker)'));
    if (prepared && options.handler !== undefined && String(options.handler) !== handlerUrl)
      return Promise.reject(
        errnoError('EINVAL', `handler ${String(options.handler)} is not the prepared worker's ${handlerUrl}`),
      );
    const counters = createCounterBuffer();
    const kickSlot = new SharedArrayBuffer(KICK_SLOT_BYTES);
    const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
    const init: RunnerInit = {
      vmFd: vm.fd,
      vcpuId: id,
      mmapSize: vm.vcpuMmapSize,
      memory: vm.describeMemory(),
      handlerUrl,
      data: options.data,
      counters,
      kickSlot,
      control,
      ...(options.restoreState ? { restoreState: options.restoreState } : {}),
    };
    let runner!: VcpuRunner;
    const release = vm.attachUser({ stop: () => runner.stop() });
    let worker: Worker;
    let earlyError: Error | undefined;
    let early: ReturnType<typeof createEarlyVcpu> | undefined;
    try {
      if (earlyRun) {
        early = createEarlyVcpu(vm.fd, id, vm.vcpuMmapSize, earlyRun);
        init.early = { handover: early.handover, kickSlot: early.kickSlot };
      }
      if (prepared) {
        ({ worker, error: earlyError } = prepared.take());
        const msg: MainMessage = { type: 'init', init };
        worker.postMessage(msg);
      } else {
        worker = spawnVcpuWorker({ handlerUrl, init }, options.name ?? `vcpu-${id}`);
      }
    } catch (error) {
      early?.vcpu.close();
      release();
      return Promise.reject(error);
    }
    return new Promise<VcpuRunner>((resolve, reject) => {
      runner = new VcpuRunner(
        worker,
        id,
        counters,
        kickSlot,
        control,
        release,
        { resolve: () => resolve(runner), reject },
        earlyError,
      );
      if (!early || !earlyRun) return;
      // A prepared worker that failed meanwhile would never take the vCPU (nor kick a spinning guest).
      if (earlyError) return cancelEarlyRun(early.vcpu, new Int32Array(control));
      try {
        runEarly(early.vcpu, earlyRun, new Int32Array(control), new ExitCounterWriter(counters));
      } catch (error) {
        reject(error); // the worker, told there is no vCPU to take, ends by itself
      }
    });
  }

  /**
   * Starts a worker for a vCPU before its VM exists: Node boots it and it loads the runner and
   * `handler` while the caller sets the VM up; pass it to `start({ prepared })`. It does not keep
   * the process alive while unused; dispose it if it will not be started.
   */
  static prepare(options: PrepareVcpuOptions): PreparedVcpu {
    return prepareVcpu(options);
  }

  /**
   * Calls `listener` with each message the handler sends with `ctx.post()` from now on; returns the
   * unsubscribe function. Plain callbacks: no RxJS on the way to the guest's first instruction.
   */
  onMessage(listener: (message: unknown) => void): () => void {
    return this.#messages.listen(listener);
  }

  /**
   * The same messages as an Observable (hot: what is posted after subscribing); completes when the
   * worker exits. RxJS is loaded at the first use of this getter, not when the runner loads.
   */
  get messages$(): Observable<unknown> {
    return this.#messages.observable;
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

  /**
   * Parks the vCPU: it leaves KVM_RUN (a kick) and the worker keeps it out, the vCPU kept, until
   * `resume()` or `stop()`. Resolves once it is parked (or the run ended). Devices and interrupts
   * go on meanwhile: an interrupt signalled now waits in the local APIC, where `saveState()` sees it.
   */
  pause(): Promise<void> {
    if (this.#result) return Promise.resolve();
    const parked = new Promise<void>((resolve) => this.#pausing.push(resolve));
    Atomics.store(this.#control, CONTROL_PAUSE, 1);
    this.kick();
    return parked;
  }

  /** Lets a paused vCPU run again. */
  resume(): void {
    Atomics.store(this.#control, CONTROL_PAUSE, 0);
    this.#wake();
  }

  /**
   * The vCPU's state (`LinuxVcpu.state()`, taken on the worker) while it is paused: `EBUSY`
   * otherwise, `EBADF` once the run ended.
   */
  saveState(): Promise<LinuxVcpuState> {
    if (this.#result)
      return Promise.reject(errnoError('EBADF', `vCPU ${this.id} is gone (the runner ended)`));
    const id = this.#nextStateRequest++;
    return new Promise<LinuxVcpuState>((resolve, reject) => {
      this.#stateRequests.set(id, { resolve, reject });
      const msg: MainMessage = { type: 'save-state', id };
      this.#worker.postMessage(msg);
      this.kick(); // a running loop sees messages only after a kick
    });
  }

  #wake(): void {
    if (this.#result) return;
    const msg: MainMessage = { type: 'wake' };
    this.#worker.postMessage(msg);
  }

  /**
   * Asks the run to end, kicks the vCPU, and resolves when the worker has exited. With
   * `saveState: true` the worker takes the vCPU's state (`LinuxVcpu.state()`, on its thread) after
   * the last exit and before closing it: `result.state` (or `result.stateError`), the guest not
   * having run a single instruction after it.
   */
  stop(options: { saveState?: boolean } = {}): Promise<VcpuRunResult> {
    if (options.saveState) Atomics.store(this.#control, CONTROL_SAVE_STATE, 1);
    Atomics.store(this.#control, CONTROL_STOP, 1);
    this.kick();
    this.#wake(); // a paused loop waits for a message, not a kick
    return this.done;
  }

  /** Stops the run (`stop()`) and waits for the worker to end. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** An error the worker serialized, rebuilt with its errno code. */
function remoteError(error: { message: string; code?: string } | undefined): Error {
  const e = new Error(error?.message ?? 'unknown worker error') as Error & { code?: string };
  if (error?.code) e.code = error.code;
  return e;
}
