// Helpers for the scatter/gather lists a BlockBackend transfers, shared by
// FileBackend and other backends (the vhost-user back-end's synchronous one).

/** Drops the first `n` bytes of a buffer list (after a partial preadv/pwritev). */
export function advanceBuffers(buffers: Uint8Array[], n: number): Uint8Array[] {
  let i = 0;
  let rest = n;
  while (i < buffers.length && rest >= (buffers[i] as Uint8Array).byteLength)
    rest -= (buffers[i++] as Uint8Array).byteLength;
  const out = buffers.slice(i);
  if (rest > 0 && out.length > 0) out[0] = (out[0] as Uint8Array).subarray(rest);
  return out;
}

/**
 * stat reports size 0 for a block device; sysfs has its size in 512-byte
 * sectors. The sysfs file for the device number `rdev` (major:minor decoded as
 * the kernel's new_decode_dev does).
 */
export function blockDeviceSizePath(rdev: number): string {
  const major = (rdev >>> 8) & 0xfff;
  const minor = (rdev & 0xff) | ((rdev >>> 12) & 0xfff00);
  return `/sys/dev/block/${major}:${minor}/size`;
}

/** Bytes from the contents of {@link blockDeviceSizePath}'s file (a sector count). */
export function blockDeviceBytes(sysfsSize: string): number {
  return Number(sysfsSize.trim()) * 512;
}
