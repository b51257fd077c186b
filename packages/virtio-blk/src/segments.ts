/**
 * Byte-range views of a descriptor chain's segment list. virtio does not
 * promise any framing (2.7.4 "Message Framing"): a request header, its data
 * and its status byte may share or split descriptors, so the request is read
 * as two byte streams (readable, writable) and cut at byte offsets.
 */
import type { Segment } from '@rxvmm/virtio-ring';

/** The segments covering bytes [start, start+length) of the stream `segments`. */
export function segmentRange(segments: readonly Segment[], start: number, length: number): Segment[] {
  const out: Segment[] = [];
  let skip = start;
  let want = length;
  for (const seg of segments) {
    if (want === 0) break;
    if (skip >= seg.len) {
      skip -= seg.len;
      continue;
    }
    const n = Math.min(seg.len - skip, want);
    out.push({ addr: seg.addr + BigInt(skip), len: n });
    want -= n;
    skip = 0;
  }
  return out;
}

/** Guest address of byte `offset` of the stream, or undefined past its end. */
export function byteAddress(segments: readonly Segment[], offset: number): bigint | undefined {
  let skip = offset;
  for (const seg of segments) {
    if (skip < seg.len) return seg.addr + BigInt(skip);
    skip -= seg.len;
  }
  return undefined;
}
