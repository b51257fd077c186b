/**
 * Turns a vCPU that sleeps forever in KVM_RUN on the test's own thread into a
 * failing test rather than a hung run (see watchdog-worker.mjs). Arm it per
 * test, register each vCPU the fixture loads a guest into.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Vcpu } from '@rxvmm/kvm';

const workerUrl = new URL('./watchdog-worker.mjs', import.meta.url);
const distIndex = new URL('../dist/index.js', import.meta.url);

export class KvmRunWatchdog {
  #worker: Worker | undefined;

  /** Needs the built package (the worker imports dist/); without it, does nothing. */
  constructor() {
    if (existsSync(fileURLToPath(distIndex))) {
      this.#worker = new Worker(workerUrl, { execArgv: [] });
      this.#worker.unref();
    } else {
      console.warn('KvmRunWatchdog: dist/ not built, a guest that never wakes would hang the run');
    }
  }

  arm(ms: number): void {
    this.#worker?.postMessage({ type: 'arm', ms });
  }

  watch(vcpu: Vcpu): void {
    const slotOf = (vcpu as { kickSlot?: () => SharedArrayBuffer }).kickSlot;
    if (this.#worker && slotOf) this.#worker.postMessage({ type: 'watch', slot: slotOf.call(vcpu) });
  }

  disarm(): void {
    this.#worker?.postMessage({ type: 'disarm' });
  }

  async close(): Promise<void> {
    await this.#worker?.terminate();
    this.#worker = undefined;
  }
}
