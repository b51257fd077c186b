/**
 * @rxvmm/eventfd/linux: the Node-on-Linux part of the package, by itself: the
 * kernel `EventFd` (on @rxvmm/sys) and `nativeAvailable`. The main entry
 * exports the same two and stays browser-safe (its browser build swaps the
 * native loader for one that answers ENOSYS); import this entry where the
 * code is Node-only and should say so.
 */
export { EventFd } from './event-fd.js';
export { nativeAvailable } from './native.js';
