import { readdir, readFile, stat } from 'node:fs/promises';
import { DeviceStatus, featureBit, VirtioFeature } from '@rxvmm/virtio';
import { InterruptBit, MmioRegister as R } from '@rxvmm/virtio-mmio';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeBlkConfig, VIRTIO_BLK_CONFIG_SIZE } from './config.js';
import { BlkFeature, BlkStatus, BlkRequestType as T } from './constants.js';
import {
  AVAIL,
  DESC,
  initDevice,
  makeRig,
  QUEUE_SIZE,
  RAM_SIZE,
  type Rig,
  settle,
  tempDisk,
  USED,
} from './test-support/harness.js';

const DISK_SECTORS = 64;
const DISK_BYTES = DISK_SECTORS * 512;

function pattern(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return out;
}

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function setup(options: Parameters<typeof makeRig>[1] = {}, initial = pattern(DISK_BYTES, 1)) {
  const disk = await tempDisk(initial);
  const rig = await makeRig(disk.path, options);
  cleanups.push(disk.cleanup, () => rig.close());
  return { rig, disk, initial };
}

/** Puts `data` in guest memory split into `pieces` segments. */
function dataSegments(rig: Rig, data: Uint8Array, pieces = 1) {
  const segs = [];
  const step = Math.ceil(data.length / pieces);
  for (let off = 0; off < data.length; off += step) {
    const len = Math.min(step, data.length - off);
    const addr = rig.alloc(len);
    rig.mem.write(addr, data.subarray(off, off + len));
    segs.push({ addr, len });
  }
  return segs;
}

function readBack(rig: Rig, segs: { addr: bigint; len: number }[]): Uint8Array {
  const total = segs.reduce((n, s) => n + s.len, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const s of segs) {
    rig.mem.read(s.addr, out.subarray(off, off + s.len));
    off += s.len;
  }
  return out;
}

describe('VirtioBlk over virtio-mmio and a split ring', () => {
  it('advertises capacity, seg_max, size_max, blk_size and num_queues in config space', async () => {
    const { rig } = await setup({ segMax: 8, sizeMax: 4096, blkSize: 4096 });
    const bytes = new Uint8Array(VIRTIO_BLK_CONFIG_SIZE);
    for (let i = 0; i < bytes.length; i += 4) {
      const v = rig.transport.read(R.Config + i, 4);
      bytes.set([v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24], i);
    }
    const config = decodeBlkConfig(bytes);
    expect(config.capacity).toBe(BigInt(DISK_SECTORS));
    expect(config.segMax).toBe(8);
    expect(config.sizeMax).toBe(4096);
    expect(config.blkSize).toBe(4096);
    expect(config.numQueues).toBe(1);
    const f = rig.blk.features;
    for (const bit of [
      BlkFeature.SEG_MAX,
      BlkFeature.SIZE_MAX,
      BlkFeature.BLK_SIZE,
      BlkFeature.FLUSH,
      VirtioFeature.VERSION_1,
    ]) {
      expect(f & featureBit(bit)).not.toBe(0n);
    }
    expect(f & featureBit(BlkFeature.RO)).toBe(0n);
    expect(rig.transport.read(R.DeviceID, 4)).toBe(2);
  });

  it.each(['async', 'sync'] as const)(
    'writes a pattern and reads it back (multi-segment, %s I/O), and the file holds it',
    async (io) => {
      const { rig, disk } = await setup({ io });
      const data = pattern(4096, 9);
      const status = rig.status();
      const used = await rig.submit([rig.header(T.OUT, 8n), ...dataSegments(rig, data, 3)], [status]);
      expect(rig.mem.readU8(status.addr)).toBe(BlkStatus.OK);
      expect(used.len).toBe(1);
      const file = await readFile(disk.path);
      expect(Buffer.compare(file.subarray(8 * 512, 8 * 512 + 4096), Buffer.from(data))).toBe(0);

      const dst = [
        { addr: rig.alloc(1000 * 0 + 1536), len: 1536 },
        { addr: rig.alloc(2560), len: 2560 },
      ];
      const status2 = rig.status();
      const used2 = await rig.submit([rig.header(T.IN, 8n)], [...dst, status2]);
      expect(rig.mem.readU8(status2.addr)).toBe(BlkStatus.OK);
      expect(used2.len).toBe(4096 + 1);
      expect(readBack(rig, dst)).toEqual(data);
      expect(rig.blk.stats.bytesRead).toBe(4096);
      expect(rig.blk.stats.bytesWritten).toBe(4096);
    },
  );

  it('does not care how the request is framed into descriptors', async () => {
    const { rig, initial } = await setup();
    // header + data in one readable descriptor
    const data = pattern(1024, 3);
    const both = rig.alloc(16 + 1024);
    const h = rig.header(T.OUT, 2n);
    rig.mem.write(both, rig.ram.slice(Number(h.addr), Number(h.addr) + 16));
    rig.mem.write(both + 16n, data);
    const status = rig.status();
    await rig.submit([{ addr: both, len: 16 + 1024 }], [status]);
    expect(rig.mem.readU8(status.addr)).toBe(BlkStatus.OK);
    // header split 5 + 11; read data and status in one writable descriptor
    const h2 = rig.header(T.IN, 2n);
    const out = rig.alloc(1024 + 1);
    const used = await rig.submit(
      [
        { addr: h2.addr, len: 5 },
        { addr: h2.addr + 5n, len: 11 },
      ],
      [{ addr: out, len: 1025 }],
    );
    expect(used.len).toBe(1025);
    expect(rig.mem.readU8(out + 1024n)).toBe(BlkStatus.OK);
    expect(rig.mem.slice(out, 1024)).toEqual(data);
    // sectors around it untouched
    const status3 = rig.status();
    const around = { addr: rig.alloc(512), len: 512 };
    await rig.submit([rig.header(T.IN, 4n)], [around, status3]);
    expect(rig.mem.slice(around.addr, 512)).toEqual(initial.subarray(4 * 512, 5 * 512));
  });

  it('flushes, and answers GET_ID with the serial', async () => {
    const { rig } = await setup({ serial: 'rxvmm-disk-0' });
    const seen: number[] = [];
    const sub = rig.blk.completions$.subscribe(({ queue, result }) => seen.push(queue, result.type));
    const status = rig.status();
    const used = await rig.submit([rig.header(T.FLUSH, 0n)], [status]);
    expect(rig.mem.readU8(status.addr)).toBe(BlkStatus.OK);
    expect(used.len).toBe(1);
    expect(rig.blk.stats.flushes).toBe(1);
    const id = { addr: rig.alloc(20), len: 20 };
    const status2 = rig.status();
    const used2 = await rig.submit([rig.header(T.GET_ID, 0n)], [id, status2]);
    expect(rig.mem.readU8(status2.addr)).toBe(BlkStatus.OK);
    expect(used2.len).toBe(21);
    const got = rig.mem.slice(id.addr, 20);
    expect(new TextDecoder().decode(got.subarray(0, 12))).toBe('rxvmm-disk-0');
    expect([...got.subarray(12)]).toEqual(new Array(8).fill(0));
    sub.unsubscribe();
    expect(seen).toEqual([0, T.FLUSH, 0, T.GET_ID]);
  });

  it('fails out-of-range sectors with IOERR and leaves the file alone', async () => {
    const { rig, disk, initial } = await setup();
    const cases: [number, bigint, number][] = [
      [T.OUT, BigInt(DISK_SECTORS), 512],
      [T.OUT, BigInt(DISK_SECTORS - 1), 1024],
      [T.OUT, 0xffff_ffff_ffff_ffffn, 512],
      [T.IN, BigInt(DISK_SECTORS), 512],
      [T.IN, 0xffff_ffff_ffff_fff0n, 8192],
    ];
    for (const [type, sector, len] of cases) {
      const status = rig.status();
      const data = { addr: rig.alloc(len), len };
      const used =
        type === T.OUT
          ? await rig.submit([rig.header(type, sector), data], [status])
          : await rig.submit([rig.header(type, sector)], [data, status]);
      expect(rig.mem.readU8(status.addr)).toBe(BlkStatus.IOERR);
      expect(used.len).toBe(1);
    }
    expect(await readFile(disk.path)).toEqual(Buffer.from(initial));
    expect((await stat(disk.path)).size).toBe(DISK_BYTES);
    expect(rig.blk.stats.ioErrors).toBe(cases.length);
  });

  it('rejects data lengths that are not a multiple of 512', async () => {
    const { rig } = await setup();
    const status = rig.status();
    await rig.submit([rig.header(T.OUT, 0n), { addr: rig.alloc(100), len: 100 }], [status]);
    expect(rig.mem.readU8(status.addr)).toBe(BlkStatus.IOERR);
  });

  it('read-only: offers VIRTIO_BLK_F_RO, fails writes with IOERR, still reads and flushes', async () => {
    const { rig, disk, initial } = await setup({ readOnly: true });
    expect(rig.blk.features & featureBit(BlkFeature.RO)).not.toBe(0n);
    const status = rig.status();
    await rig.submit([rig.header(T.OUT, 0n), ...dataSegments(rig, pattern(512, 5))], [status]);
    expect(rig.mem.readU8(status.addr)).toBe(BlkStatus.IOERR);
    const dst = { addr: rig.alloc(512), len: 512 };
    const status2 = rig.status();
    await rig.submit([rig.header(T.IN, 0n)], [dst, status2]);
    expect(rig.mem.readU8(status2.addr)).toBe(BlkStatus.OK);
    expect(rig.mem.slice(dst.addr, 512)).toEqual(initial.subarray(0, 512));
    const status3 = rig.status();
    await rig.submit([rig.header(T.FLUSH, 0n)], [status3]);
    expect(rig.mem.readU8(status3.addr)).toBe(BlkStatus.OK);
    expect(await readFile(disk.path)).toEqual(Buffer.from(initial));
  });

  it('enforces seg_max and size_max', async () => {
    const { rig, disk, initial } = await setup({ segMax: 4, sizeMax: 1024 });
    const tooMany = rig.status();
    await rig.submit([rig.header(T.OUT, 0n), ...dataSegments(rig, pattern(2560, 2), 5)], [tooMany]);
    expect(rig.mem.readU8(tooMany.addr)).toBe(BlkStatus.IOERR);
    const tooBig = rig.status();
    await rig.submit([rig.header(T.IN, 0n)], [{ addr: rig.alloc(2048), len: 2048 }, tooBig]);
    expect(rig.mem.readU8(tooBig.addr)).toBe(BlkStatus.IOERR);
    const ok = rig.status();
    await rig.submit([rig.header(T.OUT, 0n), ...dataSegments(rig, pattern(4096, 2), 4)], [ok]);
    expect(rig.mem.readU8(ok.addr)).toBe(BlkStatus.OK);
    const file = await readFile(disk.path);
    expect(file.subarray(4096)).toEqual(Buffer.from(initial.subarray(4096)));
  });

  it('answers a truncated header with IOERR and an unknown type with UNSUPP', async () => {
    const { rig } = await setup();
    const short = rig.status();
    const h = rig.header(T.IN, 0n);
    await rig.submit([{ addr: h.addr, len: 8 }], [{ addr: rig.alloc(512), len: 512 }, short]);
    expect(rig.mem.readU8(short.addr)).toBe(BlkStatus.IOERR);
    for (const type of [T.DISCARD, T.WRITE_ZEROES, T.GET_LIFETIME, 0xdead]) {
      const status = rig.status();
      await rig.submit([rig.header(type, 0n)], [status]);
      expect(rig.mem.readU8(status.addr)).toBe(BlkStatus.UNSUPP);
    }
    expect(rig.blk.stats.unsupported).toBe(4);
  });

  it('returns a chain without a writable status byte with used length 0, writing nothing', async () => {
    const { rig, disk, initial } = await setup();
    const readable = [rig.header(T.OUT, 0n), ...dataSegments(rig, pattern(512, 7))];
    const before = rig.ram.slice();
    const used = await rig.submit(readable, []);
    expect(used.len).toBe(0);
    expect(rig.blk.stats.malformed).toBe(1);
    expect(await readFile(disk.path)).toEqual(Buffer.from(initial));
    // only the driver's own ring bookkeeping changed: the used ring; heap untouched by the device
    expect(Buffer.compare(rig.ram.subarray(0x10000), before.subarray(0x10000))).toBe(0);
    expect(rig.transport.status & DeviceStatus.DEVICE_NEEDS_RESET).toBe(0);
  });

  it('moves data through a bounce buffer when a segment spans two memory regions', async () => {
    const { rig, disk } = await setup({ regions: 'two' });
    const span = BigInt(RAM_SIZE / 2 - 256);
    const data = pattern(1024, 11);
    rig.mem.write(span, data);
    const status = rig.status();
    await rig.submit([rig.header(T.OUT, 10n), { addr: span, len: 1024 }], [status]);
    expect(rig.mem.readU8(status.addr)).toBe(BlkStatus.OK);
    expect((await readFile(disk.path)).subarray(10 * 512, 10 * 512 + 1024)).toEqual(Buffer.from(data));
    rig.mem.write(span, new Uint8Array(1024));
    const status2 = rig.status();
    await rig.submit([rig.header(T.IN, 10n)], [{ addr: span, len: 1024 }, status2]);
    expect(rig.mem.readU8(status2.addr)).toBe(BlkStatus.OK);
    const back = new Uint8Array(1024);
    rig.mem.read(span, back);
    expect(back).toEqual(data);
  });

  it('interrupts the driver when a request completes, and works with EVENT_IDX and indirect descriptors', async () => {
    const { rig, disk } = await setup({ features: undefined });
    // re-initialise with every offered feature
    const features = rig.blk.features;
    initDevice(rig.transport, features, { index: 0, size: QUEUE_SIZE, desc: DESC, avail: AVAIL, used: USED });
    const { SplitDriver } = await import('@rxvmm/virtio-ring');
    const driver = new SplitDriver(rig.mem, {
      size: QUEUE_SIZE,
      descTable: DESC,
      driverArea: AVAIL,
      deviceArea: USED,
      eventIdx: true,
      indirect: true,
    });
    let interrupts = 0;
    rig.transport.interrupt$.subscribe((i) => {
      if (i.bits & InterruptBit.USED_BUFFER) interrupts++;
    });
    const data = pattern(2048, 4);
    const status = rig.status();
    const table = rig.alloc(16 * 8);
    driver.add([rig.header(T.OUT, 20n), ...dataSegments(rig, data, 4)], [status], { indirectTable: table });
    expect(driver.needsKick()).toBe(true);
    rig.transport.write(R.QueueNotify, 4, 0);
    const used = await rig.waitUsed(driver);
    expect(used.len).toBe(1);
    expect(rig.mem.readU8(status.addr)).toBe(BlkStatus.OK);
    expect(interrupts).toBe(1);
    expect(rig.transport.read(R.InterruptStatus, 4) & InterruptBit.USED_BUFFER).toBe(
      InterruptBit.USED_BUFFER,
    );
    rig.transport.write(R.InterruptACK, 4, InterruptBit.USED_BUFFER);
    expect(rig.transport.read(R.InterruptStatus, 4)).toBe(0);
    expect((await readFile(disk.path)).subarray(20 * 512, 20 * 512 + 2048)).toEqual(Buffer.from(data));
  });

  it('serves many concurrent requests and completes all of them', async () => {
    const { rig, disk } = await setup();
    const heads = new Map<number, { status: bigint; sector: number; data: Uint8Array }>();
    for (let i = 0; i < 32; i++) {
      const data = pattern(1024, 100 + i);
      const status = rig.status();
      const head = rig.driver.add([rig.header(T.OUT, BigInt(i * 2)), ...dataSegments(rig, data)], [status]);
      heads.set(head, { status: status.addr, sector: i * 2, data });
    }
    rig.transport.write(R.QueueNotify, 4, 0);
    let done = 0;
    while (done < 32) {
      await rig.waitUsed();
      done++;
    }
    expect(rig.driver.getUsed()).toBeNull();
    const file = await readFile(disk.path);
    for (const { status, sector, data } of heads.values()) {
      expect(rig.mem.readU8(status)).toBe(BlkStatus.OK);
      expect(file.subarray(sector * 512, sector * 512 + 1024)).toEqual(Buffer.from(data));
    }
  });

  it('multiqueue: offers VIRTIO_BLK_F_MQ and serves every queue', async () => {
    const { rig, disk } = await setup({ numQueues: 2 });
    expect(rig.blk.features & featureBit(BlkFeature.MQ)).not.toBe(0n);
    expect(rig.blk.config.numQueues).toBe(2);
    expect(rig.transport.read(R.Config + 34, 2)).toBe(2);
    const q1 = { index: 1, size: QUEUE_SIZE, desc: 0x5000n, avail: 0x6000n, used: 0x7000n };
    initDevice(rig.transport, featureBit(VirtioFeature.VERSION_1) | featureBit(BlkFeature.MQ), [
      { index: 0, size: QUEUE_SIZE, desc: DESC, avail: AVAIL, used: USED },
      q1,
    ]);
    const { SplitDriver } = await import('@rxvmm/virtio-ring');
    const d0 = new SplitDriver(rig.mem, {
      size: QUEUE_SIZE,
      descTable: DESC,
      driverArea: AVAIL,
      deviceArea: USED,
    });
    const d1 = new SplitDriver(rig.mem, {
      size: QUEUE_SIZE,
      descTable: q1.desc,
      driverArea: q1.avail,
      deviceArea: q1.used,
    });
    const notified: number[] = [];
    rig.transport.notify$.subscribe((q) => notified.push(q));
    const a = pattern(512, 21);
    const b = pattern(512, 22);
    d0.add([rig.header(T.OUT, 30n), ...dataSegments(rig, a)], [rig.status()]);
    d1.add([rig.header(T.OUT, 31n), ...dataSegments(rig, b)], [rig.status()]);
    rig.transport.write(R.QueueNotify, 4, 1);
    await rig.waitUsed(d1);
    rig.transport.notifyQueue(0); // as an ioeventfd would
    await rig.waitUsed(d0);
    expect(notified).toEqual([1, 0]);
    const file = await readFile(disk.path);
    expect(file.subarray(30 * 512, 31 * 512)).toEqual(Buffer.from(a));
    expect(file.subarray(31 * 512, 32 * 512)).toEqual(Buffer.from(b));
  });

  it('packed rings (opt-in): offers VIRTIO_F_RING_PACKED and serves a packed queue', async () => {
    const { rig, disk } = await setup({ packed: true });
    expect(rig.blk.features & featureBit(VirtioFeature.RING_PACKED)).not.toBe(0n);
    const features = featureBit(VirtioFeature.VERSION_1) | featureBit(VirtioFeature.RING_PACKED);
    // packed layout: descriptor ring 16 * size, driver and device event suppression 4 bytes each
    initDevice(rig.transport, features, {
      index: 0,
      size: 100,
      desc: 0x5000n,
      avail: 0x6000n,
      used: 0x6010n,
    });
    expect(rig.transport.activated).toBe(true);
    const { PackedDriver } = await import('@rxvmm/virtio-ring');
    const driver = new PackedDriver(rig.mem, {
      size: 100,
      descTable: 0x5000n,
      driverArea: 0x6000n,
      deviceArea: 0x6010n,
    });
    const data = pattern(1536, 77);
    const status = rig.status();
    driver.add([rig.header(T.OUT, 40n), ...dataSegments(rig, data, 3)], [status]);
    rig.transport.write(R.QueueNotify, 4, 0);
    await rig.waitUsed(driver);
    expect(rig.mem.readU8(status.addr)).toBe(BlkStatus.OK);
    const back = { addr: rig.alloc(1536), len: 1536 };
    const status2 = rig.status();
    driver.add([rig.header(T.IN, 40n)], [back, status2]);
    rig.transport.write(R.QueueNotify, 4, 0);
    const used = await rig.waitUsed(driver);
    expect(used.len).toBe(1537);
    expect(rig.mem.slice(back.addr, 1536)).toEqual(data);
    expect((await readFile(disk.path)).subarray(40 * 512, 40 * 512 + 1536)).toEqual(Buffer.from(data));
  });

  it('writes nothing but the disk file', async () => {
    const { rig, disk } = await setup();
    await rig.submit([rig.header(T.OUT, 63n), ...dataSegments(rig, pattern(512, 1))], [rig.status()]);
    await rig.submit([rig.header(T.OUT, 64n), ...dataSegments(rig, pattern(512, 1))], [rig.status()]);
    await rig.submit([rig.header(T.FLUSH, 0n)], [rig.status()]);
    expect(await readdir(disk.dir)).toEqual(['disk.img']);
    expect((await stat(disk.path)).size).toBe(DISK_BYTES);
  });
});

describe('VirtioBlk served away from its transport (another thread, as with a vCPU worker)', () => {
  it('takes the activation info through a structured clone; kicks, interrupts and NEEDS_RESET flow through callbacks', async () => {
    const { rig, disk } = await setup();
    const { ExternalDevice } = await import('@rxvmm/virtio-mmio');
    const { VirtioMmioTransport } = await import('@rxvmm/virtio-mmio');
    const { SplitDriver } = await import('@rxvmm/virtio-ring');
    // "vCPU thread": the register file with a stand-in device carrying blk's features and config
    const config = new Uint8Array(64);
    rig.blk.readConfig(0, config);
    const stub = new ExternalDevice({
      deviceType: 2,
      features: rig.blk.features,
      queueMaxSizes: rig.blk.queueMaxSizes,
      config,
    });
    const transport = new VirtioMmioTransport(stub, { alwaysReportUsedBuffer: true });
    // "device thread": VirtioBlk gets a structured clone of the activation, like a postMessage
    let irqs = 0;
    stub.activated$.subscribe((info) => {
      const copy = structuredClone(info);
      rig.blk.activate({
        ...copy,
        signalUsedBuffer: () => irqs++, // an irqfd write in a real VMM
        signalConfigChange: () => transport.configChanged(),
        needsReset: (e) => transport.setNeedsReset(String(e), e),
      });
    });
    stub.kick$.subscribe((q) => rig.blk.queueNotify(q)); // without ioeventfd: the kick crosses over
    initDevice(transport, featureBit(VirtioFeature.VERSION_1), {
      index: 0,
      size: QUEUE_SIZE,
      desc: 0x5000n,
      avail: 0x6000n,
      used: 0x7000n,
    });
    expect(transport.read(R.Config, 4)).toBe(DISK_SECTORS);
    const driver = new SplitDriver(rig.mem, {
      size: QUEUE_SIZE,
      descTable: 0x5000n,
      driverArea: 0x6000n,
      deviceArea: 0x7000n,
    });
    const data = pattern(512, 99);
    const status = rig.status();
    driver.add([rig.header(T.OUT, 50n), ...dataSegments(rig, data)], [status]);
    transport.write(R.QueueNotify, 4, 0);
    await rig.waitUsed(driver);
    expect(rig.mem.readU8(status.addr)).toBe(BlkStatus.OK);
    expect(irqs).toBe(1);
    expect(transport.read(R.InterruptStatus, 4)).toBe(InterruptBit.USED_BUFFER);
    expect((await readFile(disk.path)).subarray(50 * 512, 51 * 512)).toEqual(Buffer.from(data));
    // a broken ring on the device side reaches the transport as NEEDS_RESET
    rig.mem.writeU16(0x6000n + 4n + 2n, 999);
    rig.mem.writeU16(0x6000n + 2n, 2);
    transport.write(R.QueueNotify, 4, 0);
    expect(transport.status & DeviceStatus.DEVICE_NEEDS_RESET).toBe(DeviceStatus.DEVICE_NEEDS_RESET);
  });
});

describe('NEEDS_RESET on a misprogrammed device', () => {
  it('a head index out of range in the avail ring sends the device to NEEDS_RESET with a config interrupt', async () => {
    const { rig, disk, initial } = await setup();
    const interrupts: number[] = [];
    rig.transport.interrupt$.subscribe((i) => interrupts.push(i.bits));
    // publish a bogus head (>= queue size) directly in the avail ring
    rig.mem.writeU16(AVAIL + 4n, QUEUE_SIZE + 5);
    rig.mem.writeU16(AVAIL + 2n, 1);
    rig.transport.write(R.QueueNotify, 4, 0);
    await settle();
    expect(rig.transport.status & DeviceStatus.DEVICE_NEEDS_RESET).toBe(DeviceStatus.DEVICE_NEEDS_RESET);
    expect(interrupts).toContain(InterruptBit.CONFIG_CHANGE);
    expect(rig.blk.broken).toBe(true);
    expect(await readFile(disk.path)).toEqual(Buffer.from(initial));
    // the driver resets and starts again: the device works
    initDevice(
      rig.transport,
      rig.blk.features & ~featureBit(VirtioFeature.EVENT_IDX) & ~featureBit(VirtioFeature.INDIRECT_DESC),
      {
        index: 0,
        size: QUEUE_SIZE,
        desc: DESC,
        avail: AVAIL,
        used: USED,
      },
    );
    expect(rig.transport.status & DeviceStatus.DEVICE_NEEDS_RESET).toBe(0);
    const { SplitDriver } = await import('@rxvmm/virtio-ring');
    const driver = new SplitDriver(rig.mem, {
      size: QUEUE_SIZE,
      descTable: DESC,
      driverArea: AVAIL,
      deviceArea: USED,
    });
    const status = rig.status();
    driver.add([rig.header(T.FLUSH, 0n)], [status]);
    rig.transport.write(R.QueueNotify, 4, 0);
    await rig.waitUsed(driver);
    expect(rig.mem.readU8(status.addr)).toBe(BlkStatus.OK);
  });

  it('a descriptor pointing outside guest memory sends the device to NEEDS_RESET', async () => {
    const { rig, disk, initial } = await setup();
    rig.driver.add([rig.header(T.OUT, 0n), { addr: BigInt(RAM_SIZE) + 0x1000n, len: 512 }], [rig.status()]);
    rig.transport.write(R.QueueNotify, 4, 0);
    await settle();
    expect(rig.transport.status & DeviceStatus.DEVICE_NEEDS_RESET).toBe(DeviceStatus.DEVICE_NEEDS_RESET);
    expect(await readFile(disk.path)).toEqual(Buffer.from(initial));
  });

  it('a queue placed outside guest memory sends the device to NEEDS_RESET at DRIVER_OK', async () => {
    const { rig } = await setup();
    initDevice(rig.transport, rig.blk.features, {
      index: 0,
      size: QUEUE_SIZE,
      desc: BigInt(RAM_SIZE),
      avail: AVAIL,
      used: USED,
    });
    expect(rig.transport.status & DeviceStatus.DEVICE_NEEDS_RESET).toBe(DeviceStatus.DEVICE_NEEDS_RESET);
    expect(rig.transport.activated).toBe(false);
  });

  it('a driver that never readies queue 0 gets NEEDS_RESET', async () => {
    const { rig } = await setup();
    initDevice(rig.transport, rig.blk.features, {
      index: 3,
      size: QUEUE_SIZE,
      desc: DESC,
      avail: AVAIL,
      used: USED,
    });
    expect(rig.transport.status & DeviceStatus.DEVICE_NEEDS_RESET).toBe(DeviceStatus.DEVICE_NEEDS_RESET);
  });
});

describe('property: random requests against a model disk', () => {
  it('status, used length and file contents follow the spec', async () => {
    const initial = pattern(DISK_BYTES, 42);
    const { rig, disk } = await setup({ segMax: 6, sizeMax: 2048 }, initial);
    const model = Uint8Array.from(initial);
    const request = fc.record({
      type: fc.constantFrom(T.IN, T.OUT, T.FLUSH, T.GET_ID, 7),
      sector: fc.oneof(
        fc.integer({ min: 0, max: DISK_SECTORS + 4 }).map(BigInt),
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      ),
      segments: fc.array(
        fc.integer({ min: 1, max: 6 }).map((n) => n * 256),
        { minLength: 0, maxLength: 8 },
      ),
      seed: fc.integer({ min: 0, max: 255 }),
    });
    await fc.assert(
      fc.asyncProperty(request, async ({ type, sector, segments, seed }) => {
        rig.resetHeap();
        const len = segments.reduce((a, b) => a + b, 0);
        const data = pattern(len, seed);
        const segs = [];
        let off = 0;
        for (const n of segments) {
          const addr = rig.alloc(n);
          if (type === T.OUT) rig.mem.write(addr, data.subarray(off, off + n));
          segs.push({ addr, len: n });
          off += n;
        }
        const status = rig.status();
        const used =
          type === T.OUT
            ? await rig.submit([rig.header(type, sector), ...segs], [status])
            : await rig.submit([rig.header(type, sector)], [...segs, status]);
        const got = rig.mem.readU8(status.addr);
        const inRange = sector + BigInt(Math.floor(len / 512)) <= BigInt(DISK_SECTORS);
        const dataOk = len % 512 === 0 && segments.length <= 6 && segments.every((n) => n <= 2048) && inRange;
        if (type === T.IN || type === T.OUT) {
          expect(got).toBe(dataOk ? BlkStatus.OK : BlkStatus.IOERR);
          if (dataOk && type === T.OUT) model.set(data, Number(sector) * 512);
          if (dataOk && type === T.IN) {
            expect(readSegmentsOf(rig, segs)).toEqual(
              model.subarray(Number(sector) * 512, Number(sector) * 512 + len),
            );
            expect(used.len).toBe(len + 1);
          } else {
            expect(used.len).toBe(1);
          }
        } else if (type === T.FLUSH) {
          expect(got).toBe(BlkStatus.OK);
        } else if (type === T.GET_ID) {
          expect(got).toBe(BlkStatus.OK);
          expect(used.len).toBe(Math.min(20, len) + 1);
        } else {
          expect(got).toBe(BlkStatus.UNSUPP);
        }
      }),
      { numRuns: 120 },
    );
    expect(await readFile(disk.path)).toEqual(Buffer.from(model));
  });
});

function readSegmentsOf(rig: Rig, segs: { addr: bigint; len: number }[]): Uint8Array {
  return readBack(rig, segs);
}
