/**
 * A vCPU worker started ahead of its VM. Booting a Node worker and loading the
 * runner and the VMM's handler module into it is the longest step before a
 * guest's first instruction; `VcpuRunner.prepare()` starts it at once, so it
 * runs while the caller still opens /dev/kvm, creates the VM and fills guest
 * RAM. `VcpuRunner.start({ prepared, ... })` then hands it the VM.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { errnoError } from '@rxvmm/errno';
import type { WorkerBoot } from './protocol.js';

/** The built worker entry (the same URL from src/ and from dist/). */
export const VCPU_WORKER_URL = new URL('../../dist/runner/vcpu-worker.js', import.meta.url);

/**
 * The worker runs built JavaScript: drop `--conditions` flags inherited from
 * the parent (e.g. `development` under vitest), which would point it at .ts sources.
 * Undefined when there are none: the worker then inherits the parent's options as Node
 * does by default, which passes over the ones a worker cannot take (`--trace-gc`, ...),
 * where an explicit list with one of them fails (ERR_WORKER_INVALID_EXEC_ARGV).
 */
export function workerExecArgv(args: readonly string[] = process.execArgv): string[] | undefined {
  const out: string[] = [];
  let dropped = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--conditions' || arg === '-C') {
      i++;
      dropped = true;
    } else if (arg.startsWith('--conditions=')) dropped = true;
    else out.push(arg);
  }
  return dropped ? out : undefined;
}

/**
 * Starts the worker entry, kvm-linux's own unless `entry` names another (a VMM's bundle of
 * `@rxvmm/kvm-linux/vcpu-worker`); throws ENOENT when that file is not built.
 */
export function spawnVcpuWorker(
  boot: WorkerBoot,
  name: string,
  entry: URL | string = VCPU_WORKER_URL,
): Worker {
  const url = new URL(String(entry));
  if (!existsSync(fileURLToPath(url))) {
    throw errnoError(
      'ENOENT',
      entry === VCPU_WORKER_URL
        ? `${fileURLToPath(url)} is missing: build @rxvmm/kvm-linux first (pnpm build)`
        : `vCPU worker entry ${fileURLToPath(url)} is missing (not built?)`,
    );
  }
  const execArgv = workerExecArgv();
  // stdout/stderr: true, then forwarded here, as Node would forward them itself: Node's own forwarding
  // makes this thread's process.stdout and process.stderr inside the constructor, before the worker's
  // thread starts (a millisecond or two on the way to the guest's first instruction); now after.
  const worker = new Worker(url, {
    workerData: boot,
    name,
    stdout: true,
    stderr: true,
    ...(execArgv ? { execArgv } : {}),
  });
  worker.stdout.on('data', (chunk: Buffer) => process.stdout.write(chunk));
  worker.stderr.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  return worker;
}

/** Options of `VcpuRunner.prepare()`. */
export interface PrepareVcpuOptions {
  /**
   * URL (or file URL string) of the handler module (see `VcpuRunnerOptions.handler`). A `.cjs`
   * module (a CommonJS bundle) is loaded with `require`, so the worker never starts an ES module
   * loader.
   */
  handler: URL | string;
  /** Worker name shown in debuggers. */
  name?: string;
  /**
   * The worker's entry file (file URL): kvm-linux's own by default. A VMM that bundles its code
   * passes its bundle of `@rxvmm/kvm-linux/vcpu-worker` here (one file to load instead of the
   * runner's modules, e.g. CommonJS from esbuild: the worker starts without an ES module loader).
   */
  worker?: URL | string;
}

/** A vCPU worker started ahead of its VM (`VcpuRunner.prepare()`): it has loaded the runner and the handler and waits for `VcpuRunner.start({ prepared })`. */
export class PreparedVcpu implements Disposable {
  readonly handlerUrl: string;
  readonly name: string | undefined;
  #worker: Worker | undefined;
  #error: Error | undefined;
  #exitCode: number | undefined;

  constructor(options: PrepareVcpuOptions) {
    this.handlerUrl = String(options.handler);
    this.name = options.name;
    const worker = spawnVcpuWorker({ handlerUrl: this.handlerUrl }, options.name ?? 'vcpu', options.worker);
    // Until it has a VM the worker only waits: it must not keep the process alive if never used.
    worker.unref();
    worker.on('error', (error) => {
      this.#error ??= error;
    });
    worker.once('exit', (code) => {
      this.#exitCode = code;
    });
    this.#worker = worker;
  }

  /** True until `start` took the worker or it was disposed. */
  get pending(): boolean {
    return this.#worker !== undefined;
  }

  /** For VcpuRunner.start: the worker (once), and what went wrong with it meanwhile. */
  take(): { worker: Worker; error: Error | undefined } {
    const worker = this.#worker;
    if (!worker) throw errnoError('EINVAL', 'this prepared vCPU worker was already used or disposed');
    this.#worker = undefined;
    if (this.#exitCode !== undefined) {
      throw errnoError(
        'EIO',
        `the prepared vCPU worker exited early (code ${this.#exitCode}${this.#error ? `: ${this.#error.message}` : ''})`,
      );
    }
    worker.removeAllListeners('error');
    worker.removeAllListeners('exit');
    worker.ref();
    return { worker, error: this.#error };
  }

  /** Ends the worker if `start` never took it. */
  [Symbol.dispose](): void {
    const worker = this.#worker;
    this.#worker = undefined;
    void worker?.terminate();
  }
}

/** Starts a vCPU worker ahead of its VM (`VcpuRunner.prepare`; `@rxvmm/kvm-linux/prepare` exports it alone). */
export function prepareVcpu(options: PrepareVcpuOptions): PreparedVcpu {
  return new PreparedVcpu(options);
}
