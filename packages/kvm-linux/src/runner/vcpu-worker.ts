/**
 * Worker-thread entry of VcpuRunner (runs from dist/, started by
 * vcpu-runner.ts). It creates the vCPU here (KVM asks for vCPU ioctls on the
 * creating thread), or adopts the one an early run started on the starting
 * thread (early-run.ts), imports the VMM's handler module here, and loops on
 * KVM_RUN synchronously, so exits are answered without leaving the thread.
 * The loop yields to this thread's event loop only after a kick (or when a
 * handler returns a promise), which is how messages and stop requests land.
 */
import { closeSync, openSync } from 'node:fs';
import {
  type MessagePort,
  parentPort,
  receiveMessageOnPort,
  type TransferListItem,
  workerData,
} from 'node:worker_threads';
import { errnoError } from '@rxvmm/errno';
import { GuestMemory } from '@rxvmm/guest-memory';
import type { VcpuExit } from '@rxvmm/kvm';
import { KickTarget } from '../kick.js';
import { mapGuestRam } from '../memory.js';
import { LinuxVcpu } from '../vcpu.js';
import { type LinuxVcpuState, msrIndexList } from '../vcpu-state.js';
import { ExitCounterWriter } from './counters.js';
import { takeEarlyVcpu } from './early-run.js';
import type { ExitDecision, VcpuContext, VcpuHandler } from './handler.js';
import { handlerLoadError } from './handler-load-error.js';
import { loadHandlerModule } from './load-handler.js';
import {
  CONTROL_PAUSE,
  CONTROL_SAVE_STATE,
  CONTROL_STOP,
  type MainMessage,
  type RunnerInit,
  serializeError,
  type VcpuRunResult,
  type WorkerBoot,
  type WorkerMessage,
} from './protocol.js';

type HandlerModule = { default?: VcpuHandler; handler?: VcpuHandler };

const boot = workerData as WorkerBoot;
if (!parentPort) throw new Error('vcpu-worker must run as a worker thread');
const port: MessagePort = parentPort;
// The handler module loads now, while the VM may still be set up (a prepared worker waits for `init`).
const handlerModule = (loadHandlerModule(boot.handlerUrl) as Promise<HandlerModule>).catch(
  (error: unknown) => {
    throw handlerLoadError(boot.handlerUrl, error);
  },
);
handlerModule.catch(() => undefined); // awaited (and reported) in main()

const send = (message: WorkerMessage, transfer?: readonly TransferListItem[]) =>
  port.postMessage(message, transfer as TransferListItem[] | undefined);

/** What the main thread's messages go to once the run is set up (wake, save-state, the handler's). */
const listeners: ((msg: MainMessage) => void)[] = [];
const listen = (listener: (msg: MainMessage) => void): void => {
  if (listeners.length === 0) port.on('message', (msg: MainMessage) => dispatch(msg));
  listeners.push(listener);
};
const dispatch = (msg: MainMessage): void => {
  for (const listener of listeners) listener(msg);
};
/**
 * Takes the messages that arrived while the vCPU was in KVM_RUN, now. Waiting for the event loop
 * to deliver them is not enough: a turn of it (setImmediate) need not poll the port first (Node
 * 22 and 24 went back into KVM_RUN with a save-state request still queued, every time).
 */
const takeMessages = (): void => {
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port))
    dispatch(m.message as MainMessage);
};
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
const isPromise = (value: unknown): value is Promise<unknown> =>
  typeof (value as { then?: unknown } | null)?.then === 'function';

/** Exits after which a run ends unless the handler says 'continue'. */
const ENDS_BY_DEFAULT = new Set<VcpuExit['kind']>([
  'hlt',
  'shutdown',
  'internal-error',
  'fail-entry',
  'unknown',
]);

/** A structured-cloneable copy of an exit (its data view points into kvm_run). */
function copyExit(exit: VcpuExit): VcpuExit {
  return 'data' in exit ? { ...exit, data: exit.data.slice() } : { ...exit };
}

/** `init` from workerData, or the main thread's 'init' message for a prepared worker. */
function receiveInit(): Promise<RunnerInit> {
  if (boot.init) return Promise.resolve(boot.init);
  // Usually queued already (the VM was set up while this worker booted): taken now, not an event
  // loop turn later. What comes before it is dropped, as the listener below drops it.
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
    const msg = m.message as MainMessage;
    if (msg.type === 'init') return Promise.resolve(msg.init);
  }
  return new Promise((resolve) => {
    const onInit = (msg: MainMessage) => {
      if (msg.type !== 'init') return;
      port.off('message', onInit);
      resolve(msg.init);
    };
    port.on('message', onInit);
  });
}

async function main(init: RunnerInit): Promise<VcpuRunResult> {
  const control = new Int32Array(init.control);
  const stopRequested = () => Atomics.load(control, CONTROL_STOP) !== 0;
  const pauseRequested = () => Atomics.load(control, CONTROL_PAUSE) !== 0;
  /** The vCPU's state (vCPU ioctls: this thread, between runs). */
  const takeState = (): LinuxVcpuState => {
    if (!vcpu) throw errnoError('EBADF', 'the vCPU does not exist yet');
    const kvmFd = openSync('/dev/kvm', 'r+'); // KVM_GET_MSR_INDEX_LIST is a /dev/kvm ioctl
    try {
      return vcpu.state(msrIndexList(kvmFd));
    } finally {
      closeSync(kvmFd);
    }
  };
  /** The end of a stopped run; with SAVE_STATE, the vCPU's state first. */
  const stopped = (): VcpuRunResult => {
    const result: VcpuRunResult = { reason: 'stop-requested', ...(last ? { exit: copyExit(last) } : {}) };
    if (vcpu && Atomics.load(control, CONTROL_SAVE_STATE) !== 0) {
      try {
        result.state = takeState();
      } catch (error) {
        result.stateError = serializeError(error);
      }
    }
    return result;
  };
  let parked = false;
  let wake: (() => void) | undefined;
  /** Parks the loop (out of KVM_RUN, the vCPU kept) until the main thread resumes or stops it. */
  const park = async (): Promise<void> => {
    parked = true;
    while (pauseRequested() && !stopRequested()) {
      // Announced on every round: a resume()'s wake can arrive after the next pause() (a loaded
      // machine), and that pause() waits for a 'paused' of its own. Extra ones settle nothing.
      send({ type: 'paused' });
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    wake = undefined;
    parked = false;
  };
  listen((msg: MainMessage) => {
    if (msg.type === 'wake') wake?.();
    else if (msg.type === 'save-state') {
      try {
        if (!parked) throw errnoError('EBUSY', 'saveState needs the vCPU paused (runner.pause())');
        send({ type: 'state', id: msg.id, state: takeState() });
      } catch (error) {
        send({ type: 'state', id: msg.id, error: serializeError(error) });
      }
    }
  });
  const regions = mapGuestRam(init.memory);
  let memory: GuestMemory | undefined; // made at the first slice(): mapping is per thread, on demand
  const kickTarget = new KickTarget(init.kickSlot);
  const counters = new ExitCounterWriter(init.counters);
  let vcpu: LinuxVcpu | undefined;
  let handler: VcpuHandler | undefined;
  let ctx: VcpuContext | undefined;
  let last: VcpuExit | undefined;
  /** earlyRun: the exit the starting thread left unanswered, answered before the first run here. */
  let pending: VcpuExit | undefined;
  try {
    if (init.early) {
      // The guest runs on the starting thread until this thread is ready for it: taken once the
      // handler loaded (or failed to: then taken only to be closed here).
      await handlerModule.catch(() => undefined);
      const taken = takeEarlyVcpu(init.vmFd, init.early, control);
      vcpu = taken.vcpu;
      if (taken.pendingExit) pending = vcpu.exit();
    } else vcpu = new LinuxVcpu(init.vmFd, init.vcpuId, init.mmapSize);
    kickTarget.publish(vcpu.runAddress, vcpu.runSize, vcpu.fd);
    const module = await handlerModule;
    handler = module.default ?? module.handler;
    if (typeof handler?.onExit !== 'function') {
      throw new TypeError(`${init.handlerUrl} exports no VcpuHandler (default or "handler" with onExit)`);
    }
    const h = handler;
    const current: VcpuContext = {
      vcpu,
      id: init.vcpuId,
      memoryRegions: () => regions,
      slice: (gpa, length) => {
        memory ??= new GuestMemory(regions);
        return memory.slice(gpa, length);
      },
      data: init.data,
      counters,
      post: (message, transfer) => send({ type: 'post', message }, transfer),
      get stopRequested() {
        return stopRequested();
      },
    };
    ctx = current;
    listen((msg: MainMessage) => {
      if (msg.type === 'message') h.onMessage?.(msg.message, current);
    });
    await h.setup?.(current);
    // A restored snapshot wins over whatever set-up the handler did.
    if (init.restoreState) vcpu.restoreState(init.restoreState);
    send({ type: 'ready' });

    const run = vcpu;
    for (;;) {
      let exit: VcpuExit;
      if (pending) {
        exit = pending; // counted where it happened
        pending = undefined;
      } else {
        if (pauseRequested() && !stopRequested()) await park();
        if (stopRequested()) return stopped();
        exit = run.run();
        counters.count(exit);
        if (exit.kind === 'intr') {
          if (stopRequested()) return stopped();
          takeMessages();
          const r = h.onKick?.(current);
          if (isPromise(r)) await r;
          await yieldToLoop(); // let posted messages and timers of this thread run
          continue;
        }
      }
      last = exit;
      let decision: ExitDecision | Promise<ExitDecision> = h.onExit(exit, current);
      if (isPromise(decision)) decision = await decision;
      if (decision === 'stop') return { reason: 'handler-stop', exit: copyExit(exit) };
      if (decision !== 'continue' && ENDS_BY_DEFAULT.has(exit.kind))
        return { reason: 'exit', exit: copyExit(exit) };
    }
  } catch (error) {
    return { reason: 'error', error: serializeError(error), ...(last ? { exit: copyExit(last) } : {}) };
  } finally {
    // Retire the kick slot first: after this no thread touches kvm_run or signals us.
    kickTarget.retire();
    try {
      if (handler && ctx) await handler.teardown?.(ctx);
    } finally {
      vcpu?.close();
      for (const region of regions) region.dispose();
      port.removeAllListeners('message');
    }
  }
}

receiveInit()
  .then(main)
  .then(
    (result) => send({ type: 'done', result }),
    (error: unknown) => send({ type: 'done', result: { reason: 'error', error: serializeError(error) } }),
  );
