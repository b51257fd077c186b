// The example of README.md: a file-backed virtio-blk behind virtio-mmio, driven by a split-ring driver.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceStatus } from '@rxvmm/virtio';
import { BlkRequestType, BlkStatus, VirtioBlk } from '@rxvmm/virtio-blk';
import { MmioRegister as R, VirtioMmioTransport } from '@rxvmm/virtio-mmio';
import { GuestMemory, SplitDriver } from '@rxvmm/virtio-ring';

export async function runExample(): Promise<string[]> {
  const log: string[] = [];
  const dir = await mkdtemp(join(tmpdir(), 'rxvmm-example-'));
  const diskPath = join(dir, 'disk.img');
  await writeFile(diskPath, new Uint8Array(1 << 20)); // 1 MiB disk = 2048 sectors
  try {
    // Guest RAM (a VMM passes its memfd mapping here) and the device on the disk file.
    const ram = new Uint8Array(1 << 20);
    const memory = new GuestMemory([{ guestPhysAddr: 0n, bytes: ram }]);
    const blk = await VirtioBlk.open(diskPath, { memory, serial: 'example-disk' });
    const transport = new VirtioMmioTransport(blk, { isValidRange: (a, l) => memory.isValidRange(a, l) });
    transport.interrupt$.subscribe(({ bits }) => log.push(`interrupt ${bits}`));
    log.push(
      `capacity ${blk.config.capacity} sectors, seg_max ${blk.config.segMax}, size_max ${blk.config.sizeMax}`,
    );

    // The guest driver: negotiate, place a 16-entry split queue at 0x1000, DRIVER_OK.
    const w = (reg: number, v: number) => transport.write(reg, 4, v);
    w(R.Status, 0);
    w(R.Status, DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER);
    w(R.DriverFeaturesSel, 1);
    w(R.DriverFeatures, 1); // VIRTIO_F_VERSION_1 only
    w(R.Status, DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK);
    w(R.QueueNum, 16);
    w(R.QueueDescLow, 0x1000);
    w(R.QueueDriverLow, 0x2000);
    w(R.QueueDeviceLow, 0x3000);
    w(R.QueueReady, 1);
    w(R.Status, transport.read(R.Status, 4) | DeviceStatus.DRIVER_OK);
    const driver = new SplitDriver(memory, {
      size: 16,
      descTable: 0x1000n,
      driverArea: 0x2000n,
      deviceArea: 0x3000n,
    });

    // One request: header (type, reserved, sector), data, status byte.
    const request = async (type: number, sector: bigint, data: { addr: bigint; len: number }) => {
      memory.writeU32(0x4000n, type);
      memory.writeU64(0x4008n, sector);
      const header = { addr: 0x4000n, len: 16 };
      const status = { addr: 0x4010n, len: 1 };
      if (type === BlkRequestType.OUT) driver.add([header, data], [status]);
      else driver.add([header], [data, status]);
      w(R.QueueNotify, 0); // or: an ioeventfd fires and the VMM calls transport.notifyQueue(0)
      let used = driver.getUsed();
      while (!used) {
        await new Promise((resolve) => setImmediate(resolve)); // file I/O is asynchronous
        used = driver.getUsed();
      }
      w(R.InterruptACK, transport.read(R.InterruptStatus, 4));
      return { status: memory.readU8(0x4010n), len: used.len };
    };

    memory.write(0x8000n, new TextEncoder().encode('hello, virtio-blk!'.padEnd(512, '.')));
    const wr = await request(BlkRequestType.OUT, 100n, { addr: 0x8000n, len: 512 });
    log.push(`write status ${wr.status === BlkStatus.OK ? 'OK' : wr.status}`);
    const rd = await request(BlkRequestType.IN, 100n, { addr: 0x9000n, len: 512 });
    log.push(
      `read status ${rd.status === BlkStatus.OK ? 'OK' : rd.status}, used ${rd.len} bytes: ${new TextDecoder().decode(memory.slice(0x9000n, 18))}`,
    );
    const file = await readFile(diskPath);
    log.push(`file at sector 100: ${file.subarray(100 * 512, 100 * 512 + 18).toString()}`);
    await blk.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return log;
}

if (process.argv[1]?.endsWith('readme-example.ts')) runExample().then((l) => console.log(l.join('\n')));
