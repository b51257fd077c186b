// native.ts for a browser build (package.json "imports", condition "browser"): there is no
// kernel eventfd to load, and the bundle must not reach for @rxvmm/sys or any Node built-in.
// `new EventFd()` fails with ENOSYS, as in Node where the addon did not load.
import { errnoError } from '@rxvmm/errno';
import type { EventFdSyscalls } from './syscalls.js';

/** Kernel eventfds are never usable in a browser. */
export const nativeAvailable: boolean = false;

/** Always ENOSYS: SoftEventFd is the eventfd of a page. */
export function sys(): EventFdSyscalls {
  throw errnoError(
    'ENOSYS',
    'kernel eventfds need Linux and Node (@rxvmm/sys); use SoftEventFd in a browser',
  );
}
