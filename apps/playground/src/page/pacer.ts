/**
 * Run mode's clock: grants the guest its next request at the chosen rate,
 * never more than one ahead of it (so a slow page lowers the rate instead of
 * piling grants up), and reports when the run's limit is reached and the last
 * request is done. At the top rate it grants in batches and the guest never
 * waits.
 */
import type { PlaygroundMachine } from '../machine.js';

/** The rate slider's stops, in requests per second (the last: as fast as the page goes). */
export const RATES = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, Number.POSITIVE_INFINITY] as const;

export class Pacer {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #machine: PlaygroundMachine | undefined;
  #rate = 5;
  #limit = 0;
  #grantedThisRun = 0;
  #nextDue = 0;

  constructor(private readonly onLimitReached: () => void) {}

  /** Starts granting `rate` requests per second, at most `limit` of them (0: no limit). */
  start(machine: PlaygroundMachine, rate: number, limit: number): void {
    this.stop();
    this.#machine = machine;
    this.#rate = rate;
    this.#limit = limit;
    this.#grantedThisRun = 0;
    this.#nextDue = performance.now();
    this.#tick();
  }

  /** A new rate takes effect at the next grant. */
  setRate(rate: number): void {
    this.#rate = rate;
    this.#nextDue = Math.min(this.#nextDue, performance.now() + this.#interval());
  }

  setLimit(limit: number): void {
    this.#limit = limit;
  }

  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#machine = undefined;
  }

  get active(): boolean {
    return this.#machine !== undefined;
  }

  #interval(): number {
    return Number.isFinite(this.#rate) ? 1000 / this.#rate : 0;
  }

  #tick(): void {
    this.#timer = undefined;
    const machine = this.#machine;
    if (machine === undefined || machine.failure !== undefined) return;
    const remaining = this.#limit > 0 ? this.#limit - this.#grantedThisRun : Number.POSITIVE_INFINITY;
    if (remaining <= 0) {
      // Done once the guest has checked every reply: a delivery on its way (an eventfd signal is
      // delivered on a later turn) can leave the stepper empty before the last interrupt lands.
      const checked = machine.counters.verified + machine.counters.failed;
      if (machine.idle && checked >= machine.granted) {
        this.stop();
        this.onLimitReached();
        return;
      }
    } else {
      const outstanding = machine.granted - machine.counters.sent;
      const now = performance.now();
      if (!Number.isFinite(this.#rate)) {
        if (outstanding < 32) this.#grant(machine, Math.min(remaining, 64));
      } else if (outstanding <= 0 && now >= this.#nextDue) {
        this.#grant(machine, 1);
        // Keep the average rate, but never bank more than one interval of lateness.
        this.#nextDue = Math.max(this.#nextDue + this.#interval(), now);
      }
    }
    const wait = Number.isFinite(this.#rate)
      ? Math.min(Math.max(this.#nextDue - performance.now(), 0), 16)
      : 0;
    this.#timer = setTimeout(() => this.#tick(), wait);
  }

  #grant(machine: PlaygroundMachine, count: number): void {
    machine.grant(count);
    this.#grantedThisRun += count;
  }
}
