/**
 * First-fit allocator of guest-physical ranges for the mock drivers (the
 * guest's kmalloc). 16-byte granules; frees merge with their neighbours.
 */
export class RangeAllocator {
  /** Free ranges, sorted by start: [start, end) pairs as numbers. */
  private readonly holes: [number, number][];
  private readonly sizes = new Map<number, number>();

  constructor(start: number, end: number) {
    const s = Math.ceil(start / 16) * 16;
    this.holes = s < end ? [[s, end]] : [];
  }

  /** Allocates `len` bytes (16-byte aligned); `ENOMEM` when no hole is large enough. */
  alloc(len: number): number {
    const n = Math.max(16, Math.ceil(len / 16) * 16);
    for (let i = 0; i < this.holes.length; i++) {
      const hole = this.holes[i]!;
      if (hole[1] - hole[0] >= n) {
        const at = hole[0];
        hole[0] += n;
        if (hole[0] === hole[1]) this.holes.splice(i, 1);
        this.sizes.set(at, n);
        return at;
      }
    }
    throw Object.assign(new Error(`ENOMEM: mock guest memory exhausted (${len} bytes)`), { code: 'ENOMEM' });
  }

  /** Frees what `alloc` returned. */
  free(at: number): void {
    const n = this.sizes.get(at);
    if (n === undefined) throw new Error(`free of unallocated 0x${at.toString(16)}`);
    this.sizes.delete(at);
    const end = at + n;
    let i = 0;
    while (i < this.holes.length && this.holes[i]![0] < at) i++;
    this.holes.splice(i, 0, [at, end]);
    const next = this.holes[i + 1];
    if (next && next[0] === end) {
      this.holes[i]![1] = next[1];
      this.holes.splice(i + 1, 1);
    }
    const prev = this.holes[i - 1];
    if (prev && prev[1] === at) {
      prev[1] = this.holes[i]![1];
      this.holes.splice(i, 1);
    }
  }

  /** Bytes currently allocated. */
  get used(): number {
    let n = 0;
    for (const v of this.sizes.values()) n += v;
    return n;
  }
}
