/**
 * A guest in a box for virtio-blk tests: guest RAM in an ArrayBuffer, a
 * virtio-mmio transport driven through its registers like Linux does, and the
 * driver side of a split ring from @rxvmm/virtio-ring. Disks are temp files.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceStatus, featureBit, VirtioFeature } from '@rxvmm/virtio';
import { MmioRegister as R, VirtioMmioTransport } from '@rxvmm/virtio-mmio';
import { GuestMemory, type Segment, SplitDriver, type UsedElement } from '@rxvmm/virtio-ring';
import { FileBackend } from '../backend.js';
import { VirtioBlk, type VirtioBlkOptions } from '../virtio-blk.js';

export const RAM_SIZE = 4 << 20;
export const QUEUE_SIZE = 128;
export const DESC = 0x1000n;
export const AVAIL = 0x2000n;
export const USED = 0x3000n;
/** Scratch area for headers, data and status bytes. */
export const HEAP = 0x10000n;

export async function tempDisk(
  bytes: Uint8Array,
): Promise<{ dir: string; path: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'rxvmm-blk-'));
  const path = join(dir, 'disk.img');
  await writeFile(path, bytes);
  return { dir, path, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface Rig {
  mem: GuestMemory;
  ram: Uint8Array;
  transport: VirtioMmioTransport;
  blk: VirtioBlk;
  driver: SplitDriver;
  warnings: string[];
  /** Bump allocator in the heap. */
  alloc(len: number, align?: number): bigint;
  /** Forget every allocation (between independent requests). */
  resetHeap(): void;
  /** Header segment for a request. */
  header(type: number, sector: bigint): Segment;
  /** A one-byte status segment (prefilled with 0xff). */
  status(): Segment;
  /** Waits (without a time limit: no timed assertions) for the next used element of `driver`. */
  waitUsed(driver?: { getUsed(): UsedElement | null }): Promise<UsedElement>;
  /** Adds a chain, kicks through QueueNotify, waits for its used element. */
  submit(readable: Segment[], writable: Segment[]): Promise<UsedElement>;
  close(): Promise<void>;
}

function w(t: VirtioMmioTransport, reg: number, value: number | bigint): void {
  t.write(reg, 4, Number(BigInt(value) & 0xffff_ffffn));
}

/** Linux's init sequence (3.1.1): reset, ACK, DRIVER, features, FEATURES_OK, queue set-up, DRIVER_OK. */
export interface QueuePlacement {
  index: number;
  size: number;
  desc: bigint;
  avail: bigint;
  used: bigint;
}

export function initDevice(
  t: VirtioMmioTransport,
  features: bigint,
  queue: QueuePlacement | QueuePlacement[],
): void {
  w(t, R.Status, 0);
  w(t, R.Status, DeviceStatus.ACKNOWLEDGE);
  w(t, R.Status, DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER);
  w(t, R.DriverFeaturesSel, 0);
  w(t, R.DriverFeatures, features);
  w(t, R.DriverFeaturesSel, 1);
  w(t, R.DriverFeatures, features >> 32n);
  w(t, R.Status, DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK);
  for (const q of Array.isArray(queue) ? queue : [queue]) {
    w(t, R.QueueSel, q.index);
    w(t, R.QueueNum, q.size);
    w(t, R.QueueDescLow, q.desc);
    w(t, R.QueueDescHigh, q.desc >> 32n);
    w(t, R.QueueDriverLow, q.avail);
    w(t, R.QueueDriverHigh, q.avail >> 32n);
    w(t, R.QueueDeviceLow, q.used);
    w(t, R.QueueDeviceHigh, q.used >> 32n);
    w(t, R.QueueReady, 1);
  }
  w(t, R.Status, t.read(R.Status, 4) | DeviceStatus.DRIVER_OK);
}

export async function settle(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
}

export async function makeRig(
  diskPath: string,
  options: Partial<Omit<VirtioBlkOptions, 'backend' | 'memory'>> & {
    features?: bigint;
    regions?: 'one' | 'two';
    io?: 'async' | 'sync';
  } = {},
): Promise<Rig> {
  const buffer = new ArrayBuffer(RAM_SIZE);
  const ram = new Uint8Array(buffer);
  // 'two': adjacent regions split at 2 MiB, so a buffer can span them (bounce path).
  const mem =
    options.regions === 'two'
      ? new GuestMemory([
          { guestPhysAddr: 0n, bytes: ram.subarray(0, RAM_SIZE / 2) },
          { guestPhysAddr: BigInt(RAM_SIZE / 2), bytes: ram.subarray(RAM_SIZE / 2) },
        ])
      : new GuestMemory([{ guestPhysAddr: 0n, bytes: ram }]);
  const { io, ...deviceOptions } = options;
  const backend = await FileBackend.open(diskPath, {
    readOnly: options.readOnly ?? false,
    io: io ?? 'async',
  });
  const blk = new VirtioBlk({ queueSize: QUEUE_SIZE, ...deviceOptions, backend, memory: mem });
  const warnings: string[] = [];
  const transport = new VirtioMmioTransport(blk, {
    isValidRange: (a, l) => mem.isValidRange(a, l),
    onWarning: (m) => warnings.push(m),
  });
  const features =
    options.features ??
    blk.features & ~featureBit(VirtioFeature.EVENT_IDX) & ~featureBit(VirtioFeature.INDIRECT_DESC);
  initDevice(transport, features, { index: 0, size: QUEUE_SIZE, desc: DESC, avail: AVAIL, used: USED });
  const driver = new SplitDriver(mem, {
    size: QUEUE_SIZE,
    descTable: DESC,
    driverArea: AVAIL,
    deviceArea: USED,
    eventIdx: (features & featureBit(VirtioFeature.EVENT_IDX)) !== 0n,
    indirect: (features & featureBit(VirtioFeature.INDIRECT_DESC)) !== 0n,
  });
  let next = HEAP;
  const alloc = (len: number, align = 16) => {
    next = (next + BigInt(align - 1)) & ~BigInt(align - 1);
    const a = next;
    next += BigInt(len);
    if (next > BigInt(RAM_SIZE)) throw new Error('test heap exhausted');
    return a;
  };
  const rig: Rig = {
    mem,
    ram,
    transport,
    blk,
    driver,
    warnings,
    alloc,
    resetHeap() {
      next = HEAP;
    },
    header(type, sector) {
      const addr = alloc(16);
      mem.writeU32(addr, type);
      mem.writeU32(addr + 4n, 0);
      mem.writeU64(addr + 8n, sector);
      return { addr, len: 16 };
    },
    status() {
      const addr = alloc(1, 1);
      mem.writeU8(addr, 0xff);
      return { addr, len: 1 };
    },
    async waitUsed(d: { getUsed(): UsedElement | null } = driver) {
      for (;;) {
        const used = d.getUsed();
        if (used) return used;
        if (transport.status & DeviceStatus.DEVICE_NEEDS_RESET) throw new Error('device needs reset');
        // Wake on the next completion (or device failure), whatever the disk's latency. A
        // completion is reported when its I/O is done; the serving loop publishes its used entry
        // later in the same turn, so look again on the next one.
        await new Promise<void>((resolve) => {
          const off = blk.onCompletion(() => {
            off();
            sub.unsubscribe();
            setImmediate(resolve);
          });
          const sub = transport.needsReset$.subscribe(() => {
            off();
            sub.unsubscribe();
            resolve();
          });
        });
      }
    },
    async submit(readable, writable) {
      const head = driver.add(readable, writable);
      transport.write(R.QueueNotify, 4, 0);
      const used = await rig.waitUsed();
      if (used.id !== head) throw new Error(`completed ${used.id}, expected ${head}`);
      return used;
    },
    async close() {
      await blk.close();
    },
  };
  return rig;
}
