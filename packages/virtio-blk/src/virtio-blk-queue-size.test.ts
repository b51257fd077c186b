// QueueNumMax of a VirtioBlk: the spec's split-ring size rule (@rxvmm/virtio's queueSizeError),
// since a split driver takes it as its ring size, plus the device's own minimum of 2 descriptors.
import { GuestMemory } from '@rxvmm/virtio-ring';
import { describe, expect, it } from 'vitest';
import type { BlockBackend } from './backend.js';
import { VirtioBlk } from './virtio-blk.js';

const backend: BlockBackend = {
  size: 1 << 20,
  readOnly: false,
  readv: async () => 0,
  writev: async () => 0,
  flush: async () => {},
  close: async () => {},
};
const memory = new GuestMemory([{ guestPhysAddr: 0n, bytes: new Uint8Array(1 << 16) }]);
const make = (queueSize: number) => new VirtioBlk({ backend, memory, queueSize });

describe('VirtioBlk queueSize', () => {
  it.each([4, 128, 32768])('accepts %i', (size) => {
    expect(make(size).queueMaxSizes).toEqual([size]);
  });

  it.each([
    [0, /outside 1\.\.32768/],
    [3, /not a power of two/],
    [100, /not a power of two/],
    [65536, /outside 1\.\.32768/],
    [1.5, /outside/],
    [1, /at least 2 descriptors/],
  ])('refuses %d with EINVAL', (size, why) => {
    expect(() => make(size)).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(why) }),
    );
  });
});
