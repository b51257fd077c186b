/** Periodic reads of the guest's results block: progress callbacks and a stall watchdog. */
import { type GuestResults, ResultStatus } from '../guest/abi.js';

export function watchProgress(options: {
  read: () => GuestResults;
  onProgress?: ((verified: number, completed: number) => void) | undefined;
  stallMs?: number | undefined;
  onStall: () => void;
  intervalMs?: number;
}): () => void {
  const stallMs = options.stallMs ?? 20_000;
  let last = -1;
  let lastChange = Date.now();
  const timer = setInterval(() => {
    const r = options.read();
    const completed = Number(r.completed);
    options.onProgress?.(Number(r.verified), completed);
    if (completed !== last) {
      last = completed;
      lastChange = Date.now();
    } else if (r.status === ResultStatus.running && Date.now() - lastChange > stallMs) {
      clearInterval(timer);
      options.onStall();
    }
  }, options.intervalMs ?? 100);
  return () => clearInterval(timer);
}
