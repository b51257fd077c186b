// virtio-blk benchmark: requests through the whole device path (VirtioBlk behind the virtio-mmio
// transport, a split ring filled by SplitDriver, async file I/O) against the C reference
// (bench/pio.c: pread/pwrite on the same file) measured in the same run, rounds interleaved
// (ROUNDS, default 3); medians, and each figure to `pnpm bench`'s record.
// Run: pnpm --filter @rxvmm/virtio-blk bench   (needs the packages built: turbo run build)
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeviceStatus } from '@rxvmm/virtio';
import { BlkRequestType, BlkStatus, VirtioBlk } from '@rxvmm/virtio-blk';
import { MmioRegister as R, VirtioMmioTransport } from '@rxvmm/virtio-mmio';
import { GuestMemory, SplitDriver } from '@rxvmm/virtio-ring';
import { figure, median, recordFigures } from '../../../bench/figures.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const DISK = 64 << 20;
const QUEUE = 256;
const DEPTH = 32;
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const workloads = [
  { name: 'randread4k', len: 4096, write: false, random: true, requests: 20000 },
  { name: 'randread4k', io: 'sync', len: 4096, write: false, random: true, requests: 20000 },
  { name: 'seqread1m', len: 1 << 20, write: false, random: false, requests: 512 },
  { name: 'seqwrite1m', len: 1 << 20, write: true, random: false, requests: 512 },
];

const WHAT = {
  randread4k: '4 KiB random reads',
  seqread1m: '1 MiB sequential reads',
  seqwrite1m: '1 MiB sequential writes',
};

// Guest RAM is allocated once and touched before measuring, as a running guest's RAM would be.
const ram = new Uint8Array(64 << 20).fill(1);

async function device(path, io = 'async') {
  const memory = new GuestMemory([{ guestPhysAddr: 0n, bytes: ram }]);
  const blk = await VirtioBlk.open(path, { memory, queueSize: QUEUE, io });
  const t = new VirtioMmioTransport(blk);
  const w = (reg, v) => t.write(reg, 4, v);
  w(R.Status, 0);
  w(R.Status, DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER);
  w(R.DriverFeaturesSel, 1);
  w(R.DriverFeatures, 1);
  w(R.Status, DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK);
  w(R.QueueNum, QUEUE);
  w(R.QueueDescLow, 0x10000);
  w(R.QueueDriverLow, 0x20000);
  w(R.QueueDeviceLow, 0x30000);
  w(R.QueueReady, 1);
  w(R.Status, t.read(R.Status, 4) | DeviceStatus.DRIVER_OK);
  const driver = new SplitDriver(memory, {
    size: QUEUE,
    descTable: 0x10000n,
    driverArea: 0x20000n,
    deviceArea: 0x30000n,
  });
  let wake;
  // A completion is reported when its I/O is done; the serving loop publishes its used entry
  // later in the same turn: look at the used ring on the next one.
  blk.onCompletion(() => {
    const w = wake;
    wake = undefined;
    if (w) setImmediate(w);
  });
  return { memory, blk, t, driver, waitCompletion: () => new Promise((resolve) => (wake = resolve)) };
}

async function run(path, wl) {
  const { memory, blk, t, driver, waitCompletion } = await device(path, wl.io);
  const slots = Array.from({ length: DEPTH }, (_, i) => ({
    header: 0x100000n + BigInt(i * 64),
    status: 0x100000n + BigInt(i * 64 + 32),
    data: 0x200000n + BigInt(i) * BigInt(wl.len),
  }));
  const blocks = DISK / wl.len;
  let seed = 12345n;
  let issued = 0;
  let done = 0;
  const byHead = new Map();
  const issue = (slot) => {
    let block;
    if (wl.random) {
      seed = (seed * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
      block = Number((seed >> 33n) % BigInt(blocks));
    } else block = issued % blocks;
    memory.writeU32(slot.header, wl.write ? BlkRequestType.OUT : BlkRequestType.IN);
    memory.writeU64(slot.header + 8n, BigInt((block * wl.len) / 512));
    const h = { addr: slot.header, len: 16 };
    const d = { addr: slot.data, len: wl.len };
    const s = { addr: slot.status, len: 1 };
    const head = wl.write ? driver.add([h, d], [s]) : driver.add([h], [d, s]);
    byHead.set(head, slot);
    issued++;
  };
  const t0 = process.hrtime.bigint();
  for (const slot of slots) if (issued < wl.requests) issue(slot);
  t.notifyQueue(0);
  while (done < wl.requests) {
    await waitCompletion();
    let used = driver.getUsed();
    let refill = false;
    while (used) {
      const slot = byHead.get(used.id);
      if (memory.readU8(slot.status) !== BlkStatus.OK) throw new Error('request failed');
      done++;
      if (issued < wl.requests) {
        issue(slot);
        refill = true;
      }
      used = driver.getUsed();
    }
    if (refill) t.notifyQueue(0);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await blk.close();
  return {
    usPerRequest: (seconds * 1e6) / wl.requests,
    mibPerS: (wl.requests * wl.len) / (1 << 20) / seconds,
  };
}

const dir = await mkdtemp(join(tmpdir(), 'rxvmm-blk-bench-'));
try {
  const path = join(dir, 'disk.img');
  await writeFile(path, new Uint8Array(DISK).fill(0xa5));
  console.log(
    `virtio-blk device path (queue depth ${DEPTH}) vs C pread/pwrite (depth 1), ${DISK >> 20} MiB file in the page cache, median of ${ROUNDS} rounds`,
  );
  const figures = [];
  for (const wl of workloads) {
    await run(path, { ...wl, requests: Math.min(wl.requests, 256) }); // warm-up
    const ts = [];
    const c = [];
    for (let r = 0; r < ROUNDS; r++) {
      ts.push(await run(path, wl));
      const out = execFileSync(join(here, 'pio'), [path, wl.name, String(wl.requests)], { encoding: 'utf8' });
      const [, cUs, , cMib] = out.trim().split(/\s+/).map(Number);
      c.push({ usPerRequest: cUs, mibPerS: cMib });
    }
    const tsMib = median(ts.map((x) => x.mibPerS));
    const cMib = median(c.map((x) => x.mibPerS));
    const name = wl.name + (wl.io === 'sync' ? ' (sync io)' : '');
    console.log(
      `${name.padEnd(22)} rxvmm ${median(ts.map((x) => x.usPerRequest)).toFixed(2)} us/req ${tsMib.toFixed(1)} MiB/s | ` +
        `C ${median(c.map((x) => x.usPerRequest)).toFixed(2)} us/req ${cMib.toFixed(1)} MiB/s | throughput ratio rxvmm/C ${(tsMib / cMib).toFixed(2)}`,
    );
    figures.push(
      figure({
        figure: wl.name + (wl.io === 'sync' ? '-sync' : ''),
        what: `${WHAT[wl.name]}${wl.io === 'sync' ? ', synchronous file I/O' : ''} through the device path, depth ${DEPTH}`,
        unit: 'MiB/s',
        better: 'higher',
        values: ts.map((x) => x.mibPerS),
        reference: 'C pread/pwrite, depth 1 (bench/pio.c)',
        referenceValues: c.map((x) => x.mibPerS),
      }),
    );
  }
  recordFigures('virtio-blk', figures);
} finally {
  await rm(dir, { recursive: true, force: true });
}
