/**
 * The hops of the machine, one at a time. Every place where control passes
 * from one component to the next (the VMM's next `vcpu.run()`, a kick eventfd
 * delivering to the device, the device completing a chain, the VMM injecting
 * an interrupt) is queued here as an action instead of running at once. Run
 * mode drains the queue as fast as it fills, a few milliseconds at a time so
 * the page can paint; pause stops draining; `step()` runs exactly one action.
 * Nothing else changes: each action is the same library call the machine
 * would make without the stepper.
 */
import { nextTurn } from '@rxvmm/errno';

export interface Action {
  /** What the action does, for the page ("vCPU runs", "kick reaches the device", ...). */
  readonly label: string;
  run(): void;
}

/** How long one slice of run mode may take before yielding to the page. */
const SLICE_MS = 8;

export class Stepper {
  readonly #queue: Action[] = [];
  #running = false;
  #pumpScheduled = false;
  #failure: unknown;
  /** Called after every action (the machine checks its state, the page redraws lazily). */
  onAction: ((action: Action) => void) | undefined;
  /** Called after an action is queued (a paused page shows what comes next). */
  onEnqueue: ((action: Action) => void) | undefined;
  /** Called when an action throws: the stepper stops. */
  onError: ((error: unknown) => void) | undefined;

  get running(): boolean {
    return this.#running;
  }

  /** Actions waiting. */
  get pending(): number {
    return this.#queue.length;
  }

  /** The next action's label, if any. */
  get next(): string | undefined {
    return this.#queue[0]?.label;
  }

  get failed(): boolean {
    return this.#failure !== undefined;
  }

  enqueue(label: string, run: () => void): void {
    const action = { label, run };
    this.#queue.push(action);
    if (this.#running) this.#schedule();
    this.onEnqueue?.(action);
  }

  run(): void {
    if (this.failed) return;
    this.#running = true;
    this.#schedule();
  }

  pause(): void {
    this.#running = false;
  }

  /** Runs the next action; false when there was none (or the machine failed). */
  step(): boolean {
    const action = this.#queue.shift();
    if (action === undefined || this.failed) return false;
    try {
      action.run();
    } catch (error) {
      this.#failure = error;
      this.#running = false;
      this.onError?.(error);
      return false;
    }
    this.onAction?.(action);
    return true;
  }

  /** Drops every queued action (the machine is going away). */
  clear(): void {
    this.#queue.length = 0;
    this.#running = false;
  }

  #schedule(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    nextTurn(() => this.#pump());
  }

  #pump(): void {
    this.#pumpScheduled = false;
    const deadline = performance.now() + SLICE_MS;
    while (this.#running && this.#queue.length > 0) {
      if (performance.now() > deadline) {
        // Let the page paint (and timers run) before the next slice.
        this.#pumpScheduled = true;
        setTimeout(() => this.#pump(), 0);
        return;
      }
      this.step();
    }
  }
}
