// A guest that republishes chains as fast as the device pops them (it may even
// reuse a head that is in flight) must not keep the device's thread in one
// synchronous pop loop: completions, the VMM's other work and the socket all
// wait on that thread's event loop.
import { featureBit, VirtioFeature } from '@rxvmm/virtio';
import { MmioRegister as R, VirtioMmioTransport } from '@rxvmm/virtio-mmio';
import { GuestMemory, SplitDriver } from '@rxvmm/virtio-ring';
import { describe, expect, it } from 'vitest';
import type { BlockBackend, SyncBlockBackend } from './backend.js';
import { BlkRequestType as T } from './constants.js';
import { initDevice, settle } from './test-support/harness.js';
import { VirtioBlk } from './virtio-blk.js';

const SIZE = 16;
const DESC = 0x1000n;
const AVAIL = 0x2000n;
const USED = 0x3000n;

describe('VirtioBlk under a guest that never stops publishing', () => {
  it.each([
    ['an asynchronous', false],
    ['a synchronous (SyncBlockBackend)', true],
  ])('pops a bounded batch per turn of the event loop, then carries on (%s backend)', async (_, sync) => {
    const ram = new Uint8Array(1 << 20);
    const mem = new GuestMemory([{ guestPhysAddr: 0n, bytes: ram }]);
    let republish = 5000;
    let reads = 0;
    // Each request the device starts republishes the same head: what a vCPU on another thread can do.
    const again = () => {
      if (republish-- <= 0) return;
      const idx = mem.readU16(AVAIL + 2n);
      mem.writeU16(AVAIL + 4n + 2n * BigInt(idx % SIZE), 0);
      mem.writeU16(AVAIL + 2n, (idx + 1) & 0xffff);
    };
    const backend: BlockBackend = {
      size: 1 << 20,
      readOnly: false,
      readv: async (buffers) => {
        reads++;
        again();
        return buffers.reduce((n, b) => n + b.length, 0);
      },
      writev: async (buffers) => buffers.reduce((n, b) => n + b.length, 0),
      flush: async () => {},
      close: async () => {},
    };
    // A synchronous backend completes every request inside the pop loop: the budget must still end the turn.
    const syncBackend: SyncBlockBackend = {
      ...backend,
      readvSync: (buffers) => {
        reads++;
        again();
        return buffers.reduce((n, b) => n + b.length, 0);
      },
      writevSync: (buffers) => buffers.reduce((n, b) => n + b.length, 0),
      flushSync: () => {},
    };
    const blk = new VirtioBlk({ backend: sync ? syncBackend : backend, memory: mem, queueSize: SIZE });
    expect(blk.handler.sync).toBe(sync);
    const transport = new VirtioMmioTransport(blk, { isValidRange: (a, l) => mem.isValidRange(a, l) });
    const features =
      blk.features & ~featureBit(VirtioFeature.EVENT_IDX) & ~featureBit(VirtioFeature.INDIRECT_DESC);
    initDevice(transport, features, { index: 0, size: SIZE, desc: DESC, avail: AVAIL, used: USED });
    const driver = new SplitDriver(mem, { size: SIZE, descTable: DESC, driverArea: AVAIL, deviceArea: USED });
    mem.writeU32(0x10000n, T.IN);
    driver.add(
      [{ addr: 0x10000n, len: 16 }],
      [
        { addr: 0x11000n, len: 512 },
        { addr: 0x12000n, len: 1 },
      ],
    );
    transport.write(R.QueueNotify, 4, 0);
    // The notify returned after one bounded batch, not after all 5000 republished chains.
    expect(reads).toBeGreaterThan(0);
    expect(reads).toBeLessThanOrEqual(4 * SIZE + 1);
    // Later turns of the loop serve the rest.
    while (republish > 0 || blk.handler.inflight > 0) await settle();
    await settle();
    expect(reads).toBe(5001);
    await blk.close();
  });
});
