/**
 * (c) A virtio device of your own behind virtio-mmio, in a VMM (SoftKvm).
 *
 * The device is an entropy source (virtio-rng, device ID 4) written as a `ChainDevice`:
 * what it offers, and what it does with one descriptor chain (fill the driver's buffers with
 * random bytes). The VMM hosts it with `DeviceServer` (rings, the serving loop, interrupts)
 * behind `VirtioMmioTransport` (the register file) and answers the guest's MMIO exits in
 * that window with `transport.handleMmio`. The transport's interrupts go to an irqfd.
 *
 * The guest is a TypeScript program: it probes the registers, negotiates VERSION_1, sets
 * up queue 0, sets DRIVER_OK, offers buffers and kicks. For the ring bookkeeping it uses
 * virtio-ring's driver side (`SplitDriver`) over its RAM, as a guest kernel's virtio_ring.c
 * would. The same ChainDevice runs behind a vhost-user back-end (vhost-user-device.ts).
 *
 * Run: node dist/mmio-entropy-device.js
 */
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SoftEventFd, signalEach } from '@rxvmm/eventfd';
import { GuestMemory } from '@rxvmm/guest-memory';
import { type GuestProgram, SoftKvm } from '@rxvmm/kvm-soft';
import { featureBit, DeviceStatus as S, VirtioDeviceType, VirtioFeature } from '@rxvmm/virtio';
import { MmioRegister as R, VIRTIO_MMIO_MAGIC, VirtioMmioTransport } from '@rxvmm/virtio-mmio';
import { type ChainDevice, DeviceServer, SplitDriver, writeSegments } from '@rxvmm/virtio-ring';

// ---- the device: 15 lines -------------------------------------------------------------------
const entropy: ChainDevice = {
  deviceType: VirtioDeviceType.ENTROPY,
  features: featureBit(VirtioFeature.VERSION_1),
  queueMaxSizes: [64], // one request queue
  configSize: 0, // virtio-rng has no configuration space
  readConfig: (_offset, data) => data.fill(0),
  handleChain(chain, memory) {
    // Every device-writable byte of the chain gets entropy; the used length says how many.
    return writeSegments(memory, chain.writable, randomBytes(chain.writableLength));
  },
};

// ---- the machine ----------------------------------------------------------------------------
const MMIO_BASE = 0xd000_0000n; // the device's 0x200-byte register window
const QUEUE = { size: 8, descTable: 0x1_0000n, driverArea: 0x1_1000n, deviceArea: 0x1_2000n };
const BUFFERS = [0x2_0000n, 0x2_1000n];
const REPORT_PORT = 0x3f0;
const DONE_PORT = 0x3f4;

using kvm = new SoftKvm();
using vm = kvm.createVm();
vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 1 << 20 });
vm.createIrqChip();
const memory = new GuestMemory(vm.memoryRegions());

const transport = new VirtioMmioTransport(new DeviceServer(entropy, memory), {
  isValidRange: (addr, len) => memory.isValidRange(addr, len), // ring areas must be in RAM
});
using call = new SoftEventFd();
vm.setGsiRouting([{ gsi: 24, type: 'msi', addressLo: 0xfee0_0000, addressHi: 0, data: 0x40 }]);
vm.irqfd({ fd: call, gsi: 24 });
const interrupts = transport.interrupt$.pipe(signalEach(call)).subscribe(); // device -> irqfd -> guest

// ---- the guest: a virtio-mmio driver --------------------------------------------------------
const guest: GuestProgram = function* (g) {
  const rd = (reg: number) => g.mmioRead(MMIO_BASE + BigInt(reg), 4);
  const wr = (reg: number, value: number | bigint) => g.mmioWrite(MMIO_BASE + BigInt(reg), 4, value);
  let pending = 0;
  g.setInterruptHandler(function* () {
    yield* wr(R.InterruptACK, yield* rd(R.InterruptStatus));
    pending++;
    yield* g.eoi();
  });
  yield* g.enableApic({ maskLint0: true });

  if ((yield* rd(R.MagicValue)) !== BigInt(VIRTIO_MMIO_MAGIC) || (yield* rd(R.DeviceID)) !== 4n)
    return yield* g.pioOut(DONE_PORT, 1, 1);
  yield* wr(R.Status, 0); // reset
  yield* wr(R.Status, S.ACKNOWLEDGE | S.DRIVER);
  yield* wr(R.DriverFeaturesSel, 1);
  yield* wr(R.DriverFeatures, 1); // VIRTIO_F_VERSION_1 is bit 32
  yield* wr(R.Status, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  yield* wr(R.QueueSel, 0);
  yield* wr(R.QueueNum, QUEUE.size);
  yield* wr(R.QueueDescLow, QUEUE.descTable);
  yield* wr(R.QueueDriverLow, QUEUE.driverArea);
  yield* wr(R.QueueDeviceLow, QUEUE.deviceArea);
  yield* wr(R.QueueReady, 1);
  yield* wr(R.Status, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);

  const ring = new SplitDriver(new GuestMemory(vm.memoryRegions()), QUEUE);
  g.cli();
  for (const addr of BUFFERS) ring.add([], [{ addr, len: 32 }]); // two 32-byte buffers to fill
  yield* wr(R.QueueNotify, 0); // the kick: an MMIO exit the VMM hands to the transport
  while (pending === 0) yield* g.waitForInterrupt();
  for (let used = ring.getUsed(); used; used = ring.getUsed()) yield* g.pioOut(REPORT_PORT, 4, used.len);
  yield* g.pioOut(DONE_PORT, 1, 0);
};

// ---- the vCPU loop --------------------------------------------------------------------------
const reported: number[] = [];
let mmioExits = 0;
using vcpu = vm.createSoftVcpu(0);
vcpu.load(guest);
for (;;) {
  const exit = vcpu.run();
  if (exit.kind === 'intr') await vcpu.whenRunnable();
  else if (exit.kind === 'mmio' && exit.addr >= MMIO_BASE && exit.addr < MMIO_BASE + 0x200n) {
    mmioExits++;
    transport.handleMmio(Number(exit.addr - MMIO_BASE), exit.isWrite, exit.data);
  } else if (exit.kind === 'io' && exit.port === REPORT_PORT) reported.push(exit.data[0]!);
  else if (exit.kind === 'io' && exit.port === DONE_PORT && exit.data[0] === 0) break;
  else throw new Error(`unexpected exit ${JSON.stringify(exit, (_, v) => String(v))}`);
}
interrupts.unsubscribe();

const filled = BUFFERS.map((addr) => {
  const bytes = new Uint8Array(32);
  memory.read(addr, bytes);
  return bytes;
});
assert.deepEqual(reported, [32, 32]); // the used lengths the guest saw
assert.ok(filled.every((bytes) => bytes.some((b) => b !== 0)));
assert.equal(transport.status & S.DEVICE_NEEDS_RESET, 0);
console.log(`device status 0x${transport.status.toString(16)} after ${mmioExits} MMIO exits`);
console.log(
  `guest got 2 buffers of ${reported[0]} random bytes, e.g. ${Buffer.from(filled[0]!).toString('hex')}`,
);
