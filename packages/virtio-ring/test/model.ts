/**
 * A slow, obviously-correct reference of what a device must make of a ring,
 * written against GuestMemory's bigint API only (none of the queues' typed-array
 * fast paths). Property tests compare the queues to it.
 */
import type { GuestMemory, QueueConfig, VirtqueueErrorReason } from '../src/index.js';

export interface ModelChain {
  head: number;
  readable: [bigint, number][];
  writable: [bigint, number][];
}
export type ModelResult = { chains: ModelChain[]; error?: VirtqueueErrorReason };

class Stop extends Error {
  constructor(readonly reason: VirtqueueErrorReason) {
    super(reason);
  }
}

interface RawDesc {
  addr: bigint;
  len: number;
  flags: number;
  next: number;
}

function collect(mem: GuestMemory, strict: boolean, out: ModelChain, d: RawDesc, where: string): void {
  if (!mem.isValidRange(d.addr, d.len)) throw new Stop('descriptor-out-of-memory');
  if (d.flags & 2) out.writable.push([d.addr, d.len]);
  else {
    if (strict && out.writable.length > 0) throw new Stop('write-before-read');
    out.readable.push([d.addr, d.len]);
  }
  void where;
}

function readSplitDesc(mem: GuestMemory, at: bigint): RawDesc {
  return {
    addr: mem.readU64(at),
    len: mem.readU32(at + 8n),
    flags: mem.readU16(at + 12n),
    next: mem.readU16(at + 14n),
  };
}

/** Pops everything the split ring offers (up to `max` chains) from avail position `next`. */
export function modelSplit(mem: GuestMemory, cfg: QueueConfig, max: number): ModelResult {
  const chains: ModelChain[] = [];
  const strict = cfg.strictOrder ?? true;
  try {
    const idx = mem.readU16(cfg.driverArea + 2n);
    if (idx > cfg.size) throw new Stop('avail-idx-jump');
    for (let n = 0; n < idx && n < max; n++) {
      const head = mem.readU16(cfg.driverArea + 4n + BigInt(2 * (n % cfg.size)));
      if (head >= cfg.size) throw new Stop('head-out-of-range');
      const chain: ModelChain = { head, readable: [], writable: [] };
      let i = head;
      let steps = 0;
      for (;;) {
        if (++steps > cfg.size) throw new Stop('chain-too-long');
        const d = readSplitDesc(mem, cfg.descTable + BigInt(16 * i));
        if (d.flags & 4) {
          if (!cfg.indirect) throw new Stop('indirect-not-negotiated');
          if (d.flags & 1) throw new Stop('indirect-with-next');
          if (d.len === 0 || d.len % 16 !== 0) throw new Stop('indirect-table-length');
          const count = d.len / 16;
          if (count > 65535) throw new Stop('indirect-table-length');
          if (!mem.isValidRange(d.addr, d.len)) throw new Stop('descriptor-out-of-memory');
          let j = 0;
          let isteps = 0;
          for (;;) {
            if (++isteps > count) throw new Stop('chain-too-long');
            const e = readSplitDesc(mem, d.addr + BigInt(16 * j));
            if (e.flags & 4) throw new Stop('nested-indirect');
            collect(mem, strict, chain, e, 'indirect');
            if (!(e.flags & 1)) break;
            if (e.next >= count) throw new Stop('next-out-of-range');
            j = e.next;
          }
          break;
        }
        collect(mem, strict, chain, d, 'direct');
        if (!(d.flags & 1)) break;
        if (d.next >= cfg.size) throw new Stop('next-out-of-range');
        i = d.next;
      }
      chains.push(chain);
    }
    return { chains };
  } catch (error) {
    if (error instanceof Stop) return { chains, error: error.reason };
    throw error;
  }
}

/** Pops everything the packed ring offers from position 0, lap 1 (up to `max` lists). */
export function modelPacked(mem: GuestMemory, cfg: QueueConfig, max: number): ModelResult {
  const chains: ModelChain[] = [];
  const strict = cfg.strictOrder ?? true;
  const inflight = new Set<number>();
  let pos = 0;
  let wrap = 1;
  const read = (p: number) => {
    const at = cfg.descTable + BigInt(16 * p);
    return {
      addr: mem.readU64(at),
      len: mem.readU32(at + 8n),
      id: mem.readU16(at + 12n),
      flags: mem.readU16(at + 14n),
    };
  };
  try {
    for (let n = 0; n < max; n++) {
      const head = read(pos);
      const avail = (head.flags >> 7) & 1;
      const used = (head.flags >> 15) & 1;
      if (avail !== wrap || used === wrap) break;
      const chain: ModelChain = { head: 0, readable: [], writable: [] };
      let count = 0;
      let d = head;
      for (;;) {
        if (++count > cfg.size) throw new Stop('chain-too-long');
        if (d.flags & 4) {
          if (count > 1) throw new Stop('indirect-in-chain');
          if (!cfg.indirect) throw new Stop('indirect-not-negotiated');
          if (d.flags & 1) throw new Stop('indirect-with-next');
          if (d.len === 0 || d.len % 16 !== 0 || d.len / 16 > 65535) throw new Stop('indirect-table-length');
          if (!mem.isValidRange(d.addr, d.len)) throw new Stop('descriptor-out-of-memory');
          for (let j = 0; j < d.len / 16; j++) {
            const at = d.addr + BigInt(16 * j);
            const e = {
              addr: mem.readU64(at),
              len: mem.readU32(at + 8n),
              flags: mem.readU16(at + 14n),
              next: 0,
            };
            if (e.flags & 4) throw new Stop('nested-indirect');
            collect(mem, strict, chain, e, 'indirect');
          }
        } else {
          collect(mem, strict, chain, { ...d, next: 0 }, 'direct');
        }
        const last = !(d.flags & 1);
        if (last) chain.head = d.id;
        pos++;
        if (pos === cfg.size) {
          pos = 0;
          wrap ^= 1;
        }
        if (last) break;
        d = read(pos);
      }
      if (inflight.has(chain.head)) throw new Stop('buffer-id-in-use');
      inflight.add(chain.head);
      chains.push(chain);
    }
    return { chains };
  } catch (error) {
    if (error instanceof Stop) return { chains, error: error.reason };
    throw error;
  }
}
