// Loads @rxvmm/sys lazily so that importing @rxvmm/eventfd never fails: where the
// native addon cannot load (not Linux, not built) SoftEventFd still works and
// `new EventFd()` fails with ENOSYS, naming the reason.
import { errnoError } from '@rxvmm/errno';
import type { EventFdSyscalls } from './syscalls.js';

let loaded: EventFdSyscalls | undefined;
let loadError: unknown;
try {
  // Typed by shape (syscalls.ts): this assignment is where the compiler checks the real module fits.
  const addon: EventFdSyscalls = await import('@rxvmm/sys');
  loaded = addon;
} catch (error) {
  loadError = error;
}

/** True when kernel eventfds are usable in this process. */
export const nativeAvailable: boolean = loaded !== undefined;

/** The native module, or ENOSYS with the load failure as its cause. */
export function sys(): EventFdSyscalls {
  if (loaded !== undefined) return loaded;
  const reason = loadError instanceof Error ? loadError.message : String(loadError);
  throw Object.assign(
    errnoError('ENOSYS', `kernel eventfds unavailable: @rxvmm/sys did not load (${reason})`),
    {
      cause: loadError,
    },
  );
}
