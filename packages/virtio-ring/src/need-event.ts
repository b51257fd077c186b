/**
 * The spec's `vring_need_event` (split ring, VIRTIO_F_EVENT_IDX): notify iff
 * `event_idx` lies in the half-open window (old, new] of the 16-bit index that
 * was just moved. Everything is modulo 2^16.
 */
export function vringNeedEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}

/**
 * Packed-ring variant: `offWrap` holds a ring offset (bits 0..14) and the wrap
 * counter it refers to (bit 15). An offset from the other lap is moved back by
 * one ring length, then the split rule applies (same as QEMU and Linux).
 */
export function packedNeedEvent(
  offWrap: number,
  wrapCounter: number,
  ringSize: number,
  newIdx: number,
  oldIdx: number,
): boolean {
  let off = offWrap & 0x7fff;
  if (offWrap >>> 15 !== wrapCounter) off -= ringSize;
  return vringNeedEvent(off, newIdx, oldIdx);
}
