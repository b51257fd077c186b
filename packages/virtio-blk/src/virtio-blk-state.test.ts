import { DeviceStatus } from '@rxvmm/virtio';
import { MmioRegister as R, VirtioMmioTransport } from '@rxvmm/virtio-mmio';
import { afterEach, describe, expect, it } from 'vitest';
import { BlkStatus, BlkRequestType as T } from './constants.js';
import { makeRig, QUEUE_SIZE, type Rig, tempDisk } from './test-support/harness.js';
import { VirtioBlk } from './virtio-blk.js';

const viaJson = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
const SECTORS = 64;

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function setup(sectors = SECTORS): Promise<{ rig: Rig; path: string }> {
  const disk = await tempDisk(new Uint8Array(sectors * 512).fill(7));
  const rig = await makeRig(disk.path);
  cleanups.push(disk.cleanup, () => rig.close());
  return { rig, path: disk.path };
}

/** A fresh VirtioBlk on `path` (a new process would open the disk again) over the same guest RAM. */
async function reopen(rig: Rig, path: string): Promise<VirtioBlk> {
  const blk = await VirtioBlk.open(path, { memory: rig.mem, queueSize: QUEUE_SIZE });
  cleanups.push(() => blk.close());
  return blk;
}

/** Adds a one-sector write of `byte` at `sector`; returns its status segment. */
function addWrite(rig: Rig, sector: bigint, byte: number) {
  const data = rig.alloc(512);
  rig.mem.write(data, new Uint8Array(512).fill(byte));
  const status = rig.status();
  rig.driver.add([rig.header(T.OUT, sector), { addr: data, len: 512 }], [status]);
  return status;
}

describe('virtio-blk state as plain data', () => {
  it('refuses to save with requests in flight (EBUSY); after pause() the state is plain data', async () => {
    const { rig } = await setup();
    addWrite(rig, 1n, 0x11);
    rig.transport.write(R.QueueNotify, 4, 0);
    expect(rig.blk.handler.inflight).toBe(1);
    expect(() => rig.blk.device.state()).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    expect(() => rig.blk.state()).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    await rig.blk.pause();
    expect(rig.driver.getUsed()).not.toBeNull(); // the request completed and was published
    const state = viaJson(rig.blk.state());
    expect(state.device).toMatchObject({ version: 1, config: { capacity: String(SECTORS), numQueues: 1 } });
    expect(state.queues[0]).toMatchObject({ kind: 'split', nextAvail: 1, nextUsed: 1 });
  });

  it('round-trips: state → JSON → restore (device, then transport) → pause → state is the same value', async () => {
    const { rig, path } = await setup();
    await rig.submit(...writeSegments(rig));
    await rig.blk.pause();
    const saved = viaJson({ transport: rig.transport.state(), device: rig.blk.state() });
    const blk = await reopen(rig, path);
    blk.restoreState(saved.device);
    const transport = VirtioMmioTransport.fromState(blk, saved.transport, {
      isValidRange: (a, l) => rig.mem.isValidRange(a, l),
    });
    await blk.pause();
    expect(viaJson(blk.state())).toEqual(saved.device);
    expect(viaJson(transport.state())).toEqual(saved.transport);
  });

  it('a restored device serves the request whose doorbell was rung before the snapshot, then new ones', async () => {
    const { rig, path } = await setup();
    await rig.blk.pause();
    const pending = addWrite(rig, 3n, 0x33);
    rig.transport.write(R.QueueNotify, 4, 0); // rung while paused: not served
    const saved = viaJson({ transport: rig.transport.state(), device: rig.blk.state() });
    expect(rig.mem.readU8(pending.addr)).toBe(0xff);

    const blk = await reopen(rig, path);
    blk.restoreState(saved.device);
    const transport = VirtioMmioTransport.fromState(blk, saved.transport, {
      isValidRange: (a, l) => rig.mem.isValidRange(a, l),
    });
    const done = await waitUsed(rig, blk);
    expect(done.len).toBe(1);
    expect(rig.mem.readU8(pending.addr)).toBe(BlkStatus.OK);
    // And the device goes on: read the sector back through the restored transport.
    const out = rig.alloc(512);
    const status = rig.status();
    rig.driver.add([rig.header(T.IN, 3n)], [{ addr: out, len: 512 }, status]);
    transport.write(R.QueueNotify, 4, 0);
    await waitUsed(rig, blk);
    expect(rig.mem.readU8(status.addr)).toBe(BlkStatus.OK);
    expect(rig.mem.slice(out, 512).every((b) => b === 0x33)).toBe(true);
    expect(transport.status & DeviceStatus.DEVICE_NEEDS_RESET).toBe(0);
  });

  it('another disk size or other device options: EINVAL, nothing restored', async () => {
    const { rig } = await setup();
    await rig.blk.pause();
    const saved = viaJson(rig.blk.state());
    const bigger = await tempDisk(new Uint8Array(2 * SECTORS * 512));
    cleanups.push(bigger.cleanup);
    const other = await VirtioBlk.open(bigger.path, { memory: rig.mem, queueSize: QUEUE_SIZE });
    cleanups.push(() => other.close());
    expect(() => other.restoreState(saved)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => other.device.restoreState({ ...(saved.device as object), version: 2 })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });
});

function writeSegments(rig: Rig): Parameters<Rig['submit']> {
  const data = rig.alloc(512);
  rig.mem.write(data, new Uint8Array(512).fill(0x22));
  return [[rig.header(T.OUT, 2n), { addr: data, len: 512 }], [rig.status()]];
}

/** The next used element, served by `blk`. */
async function waitUsed(rig: Rig, blk: VirtioBlk) {
  for (;;) {
    const used = rig.driver.getUsed();
    if (used) return used;
    await new Promise<void>((resolve) => {
      const off = blk.onCompletion(() => {
        off();
        setImmediate(resolve);
      });
    });
  }
}
