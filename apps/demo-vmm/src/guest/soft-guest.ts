/**
 * The demo guest for SoftKvm: the driver logic of guest/guest.c as a
 * TypeScript guest program (SoftKvm's generator API). Same boot_info/results
 * ABI, same register accesses in the same order, same pattern, so the exit
 * counts of both backends compare.
 */
import type { Guest, GuestProgram, GuestStep } from '@rxvmm/kvm-soft';
import {
  BOOT_INFO_FIELDS,
  BOOT_INFO_MAGIC,
  BOOT_INFO_SIZE,
  type BootInfo,
  DONE_PORT,
  GuestMode,
  HELLO_PORT,
  RESULT_FIELDS,
  ResultStatus,
} from './abi.js';

const R = {
  magic: 0x000n,
  version: 0x004n,
  deviceId: 0x008n,
  deviceFeatures: 0x010n,
  deviceFeaturesSel: 0x014n,
  driverFeatures: 0x020n,
  driverFeaturesSel: 0x024n,
  queueSel: 0x030n,
  queueNumMax: 0x034n,
  queueNum: 0x038n,
  queueReady: 0x044n,
  queueNotify: 0x050n,
  interruptStatus: 0x060n,
  interruptAck: 0x064n,
  status: 0x070n,
  queueDescLow: 0x080n,
  queueDescHigh: 0x084n,
  queueDriverLow: 0x090n,
  queueDriverHigh: 0x094n,
  queueDeviceLow: 0x0a0n,
  queueDeviceHigh: 0x0a4n,
  config: 0x100n,
} as const;

const S = { ack: 1, driver: 2, driverOk: 4, featuresOk: 8, needsReset: 64 } as const;
const FAIL = {
  noDevice: 2n,
  features: 3n,
  queue: 4n,
  diskTooSmall: 5n,
  ioStatus: 6n,
  verify: 7n,
  needsReset: 8n,
};

/** Byte j of request i (guest.c's pattern; the e2e tests check the disk against it). */
export function patternByte(request: number, offset: number): number {
  return ((request * 131 + offset * 7 + (offset >> 9)) ^ 0x5a) & 0xff;
}

const alignUp = (v: bigint, a: bigint) => (v + a - 1n) & ~(a - 1n);

export const blkGuestProgram: GuestProgram = function* (g: Guest): GuestStep<void> {
  yield* g.pioOut(HELLO_PORT, 1, 0); // first instruction: start-up time
  g.cli();
  const biAddr = g.regs.rdi;
  const bi = {} as BootInfo;
  BOOT_INFO_FIELDS.forEach((f, i) => {
    bi[f] = g.readU64(biAddr + BigInt(i * 8));
  });
  if (bi.magic === BOOT_INFO_MAGIC) yield* driver(g, bi, biAddr + BigInt(BOOT_INFO_SIZE));
  yield* g.pioOut(DONE_PORT, 1, 0);
};

function* driver(g: Guest, bi: BootInfo, resultsAddr: bigint): GuestStep<void> {
  const field = (name: (typeof RESULT_FIELDS)[number]) =>
    resultsAddr + BigInt(RESULT_FIELDS.indexOf(name) * 8);
  const set = (name: (typeof RESULT_FIELDS)[number], v: bigint) => g.writeU64(field(name), v);
  const get = (name: (typeof RESULT_FIELDS)[number]) => g.readU64(field(name));
  const mmio = bi.mmioBase;
  function* rd(off: bigint): GuestStep<number> {
    return Number(yield* g.mmioRead(mmio + off, 4));
  }
  function* wr(off: bigint, v: number | bigint): GuestStep<void> {
    yield* g.mmioWrite(mmio + off, 4, BigInt(v) & 0xffff_ffffn);
  }
  let interrupts = 0n;
  let configChanged = false;
  function* fail(code: bigint, detail: bigint): GuestStep<void> {
    set('failCode', code);
    set('failDetail', detail);
    set('deviceStatus', BigInt(yield* rd(R.status)));
    set('interrupts', interrupts);
    set('status', ResultStatus.failed);
  }

  set('status', ResultStatus.running);
  // Interrupts: the handler acknowledges at the device, then EOIs the local APIC.
  g.setInterruptHandler(function* () {
    const status = yield* rd(R.interruptStatus);
    if (status !== 0) yield* wr(R.interruptAck, status);
    if (status & 2) configChanged = true;
    interrupts++;
    yield* g.eoi();
  });
  yield* g.maskPic();
  yield* g.enableApic();
  if (bi.ioapicPin !== 0xffff_ffff_ffff_ffffn)
    yield* g.ioapicRoute(Number(bi.ioapicPin), { vector: Number(bi.irqVector) });

  if ((yield* rd(R.magic)) !== 0x74726976 || (yield* rd(R.version)) !== 2 || (yield* rd(R.deviceId)) !== 2) {
    yield* fail(FAIL.noDevice, BigInt(yield* rd(R.deviceId)));
    return;
  }
  yield* wr(R.status, 0);
  yield* wr(R.status, S.ack);
  yield* wr(R.status, S.ack | S.driver);
  yield* wr(R.deviceFeaturesSel, 1);
  const featuresHi = yield* rd(R.deviceFeatures);
  if ((featuresHi & 1) === 0) {
    yield* fail(FAIL.features, BigInt(featuresHi));
    return;
  }
  yield* wr(R.driverFeaturesSel, 0);
  yield* wr(R.driverFeatures, 0);
  yield* wr(R.driverFeaturesSel, 1);
  yield* wr(R.driverFeatures, 1); // VIRTIO_F_VERSION_1
  yield* wr(R.status, S.ack | S.driver | S.featuresOk);
  if (((yield* rd(R.status)) & S.featuresOk) === 0) {
    yield* fail(FAIL.features, BigInt(yield* rd(R.status)));
    return;
  }

  const blockSize = bi.blockSize;
  const sectorsPerRequest = blockSize / 512n;
  const capLo = BigInt(yield* rd(R.config));
  const capHi = BigInt(yield* rd(R.config + 4n));
  const capacity = capLo | (capHi << 32n);
  if (capacity < bi.requests * sectorsPerRequest) {
    yield* fail(FAIL.diskTooSmall, capacity);
    return;
  }

  yield* wr(R.queueSel, 0);
  const max = yield* rd(R.queueNumMax);
  const size = Number(bi.queueSize);
  if (max === 0 || size > max || size < 4) {
    yield* fail(FAIL.queue, BigInt(max));
    return;
  }
  let at = alignUp(bi.scratchBase, 4096n);
  const desc = at;
  at = alignUp(at + 16n * BigInt(size), 4096n);
  const avail = at;
  at = alignUp(at + 6n + 2n * BigInt(size), 4096n);
  const used = at;
  at = alignUp(at + 6n + 8n * BigInt(size), 4096n);
  const header = at;
  const status = at + 64n;
  at += 4096n;
  const outBuf = at;
  const inBuf = at + blockSize;
  if (at + 3n * blockSize > bi.scratchBase + bi.scratchSize) {
    yield* fail(FAIL.queue, blockSize);
    return;
  }

  const descAddr = bi.mode === BigInt(GuestMode.badQueueAddr) ? bi.ramSize + 0x4000_0000n : desc;
  yield* wr(R.queueNum, size);
  yield* wr(R.queueDescLow, descAddr & 0xffff_ffffn);
  yield* wr(R.queueDescHigh, descAddr >> 32n);
  yield* wr(R.queueDriverLow, avail & 0xffff_ffffn);
  yield* wr(R.queueDriverHigh, avail >> 32n);
  yield* wr(R.queueDeviceLow, used & 0xffff_ffffn);
  yield* wr(R.queueDeviceHigh, used >> 32n);
  yield* wr(R.queueReady, 1);
  yield* wr(R.status, S.ack | S.driver | S.featuresOk | S.driverOk);

  // One three-descriptor chain, reused: header (read), data, status (write).
  const setDesc = (i: number, addr: bigint, len: number, flags: number, next: number) => {
    const d = desc + BigInt(16 * i);
    g.writeU64(d, addr);
    g.writeU32(d + 8n, len);
    g.writeU16(d + 12n, flags);
    g.writeU16(d + 14n, next);
  };
  let availIdx = 0;
  let usedIdx = 0;
  const submit = (head: number) => {
    g.writeU16(avail + 4n + 2n * BigInt(availIdx % size), head);
    availIdx = (availIdx + 1) & 0xffff;
    g.writeU16(avail + 2n, availIdx);
  };
  const kick = () => wr(R.queueNotify, 0);
  /** Waits for the completion and its interrupt (one per request), or a config change (-1). */
  function* waitUsed(seen: bigint): GuestStep<number> {
    for (;;) {
      g.cli();
      if (g.readU16(used + 2n) !== usedIdx && interrupts !== seen) break;
      if (configChanged) {
        g.sti();
        return -1;
      }
      yield* g.waitForInterrupt();
    }
    g.sti();
    usedIdx = (usedIdx + 1) & 0xffff;
    return 0;
  }

  setDesc(0, header, 16, 1, 1);
  setDesc(2, status, 1, 2, 0);

  if (bi.mode !== BigInt(GuestMode.normal)) {
    // Misprogrammed device: the device must refuse it with NEEDS_RESET.
    submit(bi.mode === BigInt(GuestMode.badHead) ? size + 5 : 0);
    g.sti();
    yield* kick();
    while (((yield* rd(R.status)) & S.needsReset) === 0) {
      g.cli();
      if (!configChanged) yield* g.waitForInterrupt();
      g.sti();
      configChanged = false;
    }
    yield* fail(FAIL.needsReset, bi.mode);
    return;
  }

  const block = Number(blockSize);
  const out = new Uint8Array(block);
  g.sti();
  for (let i = 0n; i < bi.requests; i++) {
    for (let j = 0; j < block; j++) out[j] = patternByte(Number(i), j);
    g.write(outBuf, out);
    for (let pass = 0; pass < 2; pass++) {
      const isWrite = pass === 0;
      g.writeU32(header, isWrite ? 1 : 0); // VIRTIO_BLK_T_OUT / IN
      g.writeU32(header + 4n, 0);
      g.writeU64(header + 8n, i * sectorsPerRequest);
      g.writeU8(status, 0xff);
      setDesc(1, isWrite ? outBuf : inBuf, block, 1 | (isWrite ? 0 : 2), 2);
      const seen = interrupts;
      submit(0);
      yield* kick();
      if ((yield* waitUsed(seen)) !== 0) {
        yield* fail(FAIL.needsReset, i);
        return;
      }
      const st = g.readU8(status);
      if (st !== 0) {
        yield* fail(FAIL.ioStatus, (i << 8n) | BigInt(st));
        return;
      }
      set('completed', get('completed') + 1n);
    }
    const back = g.read(inBuf, block);
    for (let j = 0; j < block; j++)
      if (back[j] !== out[j]) {
        yield* fail(FAIL.verify, i);
        return;
      }
    set('verified', get('verified') + 1n);
  }
  set('deviceStatus', BigInt(yield* rd(R.status)));
  set('interrupts', interrupts);
  set('status', ResultStatus.ok);
}
