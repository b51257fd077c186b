/**
 * The `requireSealed` policy: a frontend that shrinks a region's file after
 * SET_MEM_TABLE makes the back-end's next access to the lost pages SIGBUS (the
 * size check at map time cannot stop a later ftruncate). A file sealed with
 * F_SEAL_SHRINK cannot shrink, so the mapping stays valid for its lifetime.
 * QEMU's memory-backend-memfd seals its memfds this way by default.
 */
import { errnoError, isErrno } from '@rxvmm/errno';
import { F_SEAL_SHRINK, getSeals } from '@rxvmm/sys';

/**
 * Throws EPERM unless `fd` carries F_SEAL_SHRINK. `what` names it in the message: a number is
 * region `what` of a memory table, a string is used as it is (e.g. 'the inflight region').
 */
export function requireShrinkSeal(fd: number, what: number | string): void {
  const name = typeof what === 'number' ? `region ${what}` : what;
  let seals: number;
  try {
    seals = getSeals(fd);
  } catch (error) {
    if (!isErrno(error, 'EINVAL')) throw error;
    throw errnoError(
      'EPERM',
      `${name}: its fd cannot be sealed (not a memfd or shmem file) and sealed memory is required (F_SEAL_SHRINK)`,
    );
  }
  if ((seals & F_SEAL_SHRINK) === 0)
    throw errnoError(
      'EPERM',
      `${name}: its fd is not sealed against shrinking (F_SEAL_SHRINK) and sealed memory is required; a frontend that truncated it would crash the back-end with SIGBUS`,
    );
}
