// The disk pattern of scripts/guest/blkwork.c, on the host side: the little-endian u32 word at byte
// offset o is (o/4) * 2654435761 + seed (mod 2^32). Each word names its own offset, so data that
// lands at the wrong place is caught as surely as data that is wrong.

const GOLDEN = 2654435761 | 0;

/** Fills `buf` with the pattern as it appears at disk offset `offset` (4-byte aligned). */
export function fillPattern(buf: Uint8Array, offset: number, seed: number): void {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let i = offset / 4;
  for (let k = 0; k + 4 <= buf.byteLength; k += 4, i++)
    view.setUint32(k, (Math.imul(i, GOLDEN) + seed) >>> 0, true);
}

/** Disk offset of the first word of `buf` (read from disk offset `offset`) that breaks the pattern, or -1. */
export function findMismatch(buf: Uint8Array, offset: number, seed: number): number {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let i = offset / 4;
  for (let k = 0; k + 4 <= buf.byteLength; k += 4, i++)
    if (view.getUint32(k, true) !== (Math.imul(i, GOLDEN) + seed) >>> 0) return offset + k;
  return -1;
}
