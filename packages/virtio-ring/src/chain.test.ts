import { describe, expect, it } from 'vitest';
import { ChainBuffer, type DescriptorChain } from './chain.js';

describe('ChainBuffer.setFrom', () => {
  it('round-trips a chain with readable and writable segments through setFrom and toDescriptorChain', () => {
    const chain: DescriptorChain = {
      head: 7,
      readable: [
        { addr: 0x1000n, len: 16 },
        { addr: 0x2000n, len: 512 },
      ],
      writable: [
        { addr: 0x3000n, len: 4096 },
        { addr: 0x4000n, len: 1024 },
        { addr: 0x5000n, len: 1 },
      ],
      readableLength: 528,
      writableLength: 5121,
    };
    // Capacity 1 and a previous chain: setFrom grows the arrays and clears what was there.
    const buffer = new ChainBuffer(1);
    buffer.setSingle(3, 0x9000, 8, true);
    expect(buffer.setFrom(chain)).toBe(buffer);
    expect(buffer.toDescriptorChain()).toEqual(chain);
    expect(buffer.descriptorCount).toBe(0);
  });
});
