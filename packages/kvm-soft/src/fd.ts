import type { EventFdRef } from '@rxvmm/kvm';

/** The descriptor number of an `EventFdRef` (what the ioctl would receive). */
export function fdOf(ref: EventFdRef | undefined): number {
  if (ref === undefined) return -1;
  return typeof ref === 'number' ? ref : ref.fd;
}
