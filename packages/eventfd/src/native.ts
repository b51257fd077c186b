// Loads @rxvmm/sys lazily so that importing @rxvmm/eventfd never fails: where the
// native addon cannot load (not Linux, not built) InMemoryEventFd still works and
// `new EventFd()` fails with ENOSYS, naming the reason.
import { errnoError } from '@rxvmm/errno';

type Sys = typeof import('@rxvmm/sys');

let loaded: Sys | undefined;
let loadError: unknown;
try {
  loaded = await import('@rxvmm/sys');
} catch (error) {
  loadError = error;
}

/** True when kernel eventfds are usable in this process. */
export const nativeAvailable: boolean = loaded !== undefined;

/** The native module, or ENOSYS with the load failure as its cause. */
export function sys(): Sys {
  if (loaded !== undefined) return loaded;
  const reason = loadError instanceof Error ? loadError.message : String(loadError);
  throw Object.assign(
    errnoError('ENOSYS', `kernel eventfds unavailable: @rxvmm/sys did not load (${reason})`),
    {
      cause: loadError,
    },
  );
}
