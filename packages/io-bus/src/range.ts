/**
 * The kernel's `kvm_io_bus_cmp` and `bsearch`, kept exact so dispatch order is
 * the kernel's. `cmp(a, b)` orders by address, then by end address; when `b`
 * has length 0 only the address counts. Used with `a` = the access and `b` =
 * a registration, 0 means "b contains a" (or, for a length-0 b, same address).
 */
export interface IoRange {
  addr: bigint;
  len: number;
}

/** kvm_io_bus_cmp(): orders `r1` (an access) against `r2` (a registration); 0 when `r2` contains `r1`. */
export function ioRangeCmp(r1: IoRange, r2: IoRange): number {
  let addr1 = r1.addr;
  let addr2 = r2.addr;
  if (addr1 < addr2) return -1;
  // A length-0 r2 matches its exact address; otherwise compare end addresses.
  if (r2.len !== 0) {
    addr1 += BigInt(r1.len);
    addr2 += BigInt(r2.len);
  }
  if (addr1 > addr2) return 1;
  return 0;
}

/**
 * lib/bsearch.c: halves `num` each step; returns the index of *an* element that
 * compares equal to the key (not necessarily the first), or -1.
 */
export function bsearch<T extends IoRange>(key: IoRange, items: readonly T[]): number {
  let base = 0;
  let num = items.length;
  while (num > 0) {
    const pivot = base + (num >> 1);
    const result = ioRangeCmp(key, items[pivot] as T);
    if (result === 0) return pivot;
    if (result > 0) {
      base = pivot + 1;
      num--;
    }
    num >>= 1;
  }
  return -1;
}
