import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { featureBit, VirtioFeature } from '@rxvmm/virtio';
import { BlkRequestType, VirtioBlk } from '@rxvmm/virtio-blk';
import { GuestMemory, SplitDriver } from '@rxvmm/virtio-ring';
import { afterEach, describe, expect, it } from 'vitest';
import { BlockService } from './backends.js';
import { SharedState, SharedWord } from './layout.js';

const QUEUE = { size: 16, descTable: 0x1000n, driverArea: 0x2000n, deviceArea: 0x3000n };
const info = {
  features: featureBit(VirtioFeature.VERSION_1),
  queues: [
    { index: 0, maxSize: 256, ...QUEUE, packed: false, eventIdx: false, indirect: false, ready: true },
  ],
};

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

async function setup() {
  dir = mkdtempSync(join(tmpdir(), 'rxvmm-demo-unit-'));
  const disk = join(dir, 'disk.img');
  writeFileSync(disk, Buffer.alloc(64 * 512));
  const memory = new GuestMemory([{ guestPhysAddr: 0n, bytes: new Uint8Array(1 << 20) }]);
  const blk = await VirtioBlk.open(disk, { memory });
  const shared = new SharedState();
  let injected = 0;
  const service = new BlockService(blk, shared.buffer, () => {
    injected++;
  });
  const driver = new SplitDriver(memory, QUEUE);
  return { disk, memory, blk, shared, service, driver, injected: () => injected };
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
  expect(cond()).toBe(true);
}

describe('BlockService (the back-end side on the main thread)', () => {
  it('a kick that overtakes the activation message is kept and served once activated', async () => {
    const t = await setup();
    t.memory.writeU32(0x4000n, BlkRequestType.OUT);
    t.memory.writeU64(0x4008n, 3n);
    t.memory.write(0x8000n, new Uint8Array(512).fill(0x77));
    t.driver.add(
      [
        { addr: 0x4000n, len: 16 },
        { addr: 0x8000n, len: 512 },
      ],
      [{ addr: 0x4010n, len: 1 }],
    );
    t.service.onKick(); // the ioeventfd's signal arrived first
    await new Promise((r) => setTimeout(r, 10));
    expect(t.injected()).toBe(0);
    t.service.onHostEvent({ type: 'activated', info });
    await until(() => t.injected() === 1);
    expect(t.driver.getUsed()).not.toBeNull();
    expect(t.memory.readU8(0x4010n)).toBe(0);
    await t.service.close();
    expect(
      readFileSync(t.disk)
        .subarray(3 * 512, 4 * 512)
        .every((b) => b === 0x77),
    ).toBe(true);
  });

  it('a ring error: NEEDS_RESET through shared memory plus one interrupt, and the reason kept', async () => {
    const t = await setup();
    t.service.onHostEvent({ type: 'activated', info });
    // An avail entry naming head 21 in a 16-entry queue.
    t.memory.writeU16(0x2004n, 21);
    t.memory.writeU16(0x2002n, 1);
    t.service.onKick();
    expect(t.shared.get(SharedWord.needsReset)).toBe(1);
    expect(t.injected()).toBe(1);
    expect(t.service.failure).toMatch(/head 21/);
    await t.service.close();
  });

  it('a config-change interrupt raised by the register file is injected here', async () => {
    const t = await setup();
    t.service.onHostEvent({ type: 'interrupt' });
    expect(t.injected()).toBe(1);
    await t.service.close();
  });
});
