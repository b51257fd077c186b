import { featureBit, DeviceStatus as S, type VirtioActivation, VirtioFeature } from '@rxvmm/virtio';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InterruptBit, MmioRegister as R, VIRTIO_MMIO_MAGIC } from './constants.js';
import {
  deviceFeatures,
  driverOk,
  negotiate,
  r,
  setupQueue,
  w,
  writeDriverFeatures,
} from './test-support/driver.js';
import { FakeDevice } from './test-support/fake-device.js';
import { type NeedsResetEvent, type VirtioInterrupt, VirtioMmioTransport } from './transport.js';

const V1 = featureBit(VirtioFeature.VERSION_1);
const EVENT_IDX = featureBit(VirtioFeature.EVENT_IDX);
const BLK_FLUSH = 1n << 9n;

function make(extra: Partial<{ features: bigint; queueMaxSizes: number[] }> = {}, opts = {}) {
  const device = new FakeDevice({
    features: extra.features ?? V1 | EVENT_IDX | BLK_FLUSH,
    queueMaxSizes: extra.queueMaxSizes ?? [256, 128],
  });
  const warnings: string[] = [];
  const interrupts: VirtioInterrupt[] = [];
  const levels: boolean[] = [];
  const t = new VirtioMmioTransport(device, {
    onWarning: (m) => warnings.push(m),
    onInterrupt: (i) => interrupts.push(i),
    ...opts,
  });
  t.irqLevel$.subscribe((l) => levels.push(l));
  return { device, t, warnings, interrupts, levels };
}

const goodQueue = { index: 0, size: 256, desc: 0x10000n, driver: 0x11000n, device: 0x12000n };

describe('register map', () => {
  it('identifies a version 2 device', () => {
    const { t } = make();
    expect(r(t, R.MagicValue)).toBe(VIRTIO_MMIO_MAGIC);
    expect(r(t, R.Version)).toBe(2);
    expect(r(t, R.DeviceID)).toBe(2);
    expect(r(t, R.VendorID)).toBe(0x1af4);
  });

  it('reports QueueNumMax per QueueSel and 0 for a missing queue', () => {
    const { t } = make();
    expect(r(t, R.QueueNumMax)).toBe(256);
    w(t, R.QueueSel, 1);
    expect(r(t, R.QueueNumMax)).toBe(128);
    w(t, R.QueueSel, 2);
    expect(r(t, R.QueueNumMax)).toBe(0);
    expect(r(t, R.QueueReady)).toBe(0);
  });

  it('pages the 64-bit feature set through DeviceFeaturesSel, masking RING_RESET', () => {
    const features = V1 | BLK_FLUSH | featureBit(VirtioFeature.RING_RESET);
    const { t } = make({ features });
    expect(deviceFeatures(t)).toBe(V1 | BLK_FLUSH);
    w(t, R.DeviceFeaturesSel, 2);
    expect(r(t, R.DeviceFeatures)).toBe(0);
  });

  it('reads a missing shared memory region as length -1', () => {
    const { t } = make();
    w(t, R.SHMSel, 0);
    expect(r(t, R.SHMLenLow)).toBe(0xffffffff);
    expect(r(t, R.SHMLenHigh)).toBe(0xffffffff);
  });

  it('ignores non-4-byte register accesses and write-only reads, with a warning and no throw', () => {
    const { t, warnings } = make();
    expect(t.read(R.MagicValue, 2)).toBe(0);
    expect(t.read(R.MagicValue + 1, 4)).toBe(0);
    t.write(R.QueueSel, 1, 1);
    expect(t.read(R.QueueNotify, 4)).toBe(0);
    t.write(R.MagicValue, 4, 5);
    expect(r(t, R.MagicValue)).toBe(VIRTIO_MMIO_MAGIC);
    expect(warnings.length).toBe(5);
    const data = new Uint8Array(8).fill(0xaa);
    t.handleMmio(R.MagicValue, false, data);
    expect([...data]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(warnings.length).toBe(6);
  });

  it('serves MMIO exits little-endian', () => {
    const { t } = make();
    const data = new Uint8Array(4);
    t.handleMmio(R.MagicValue, false, data);
    expect(new TextDecoder().decode(data)).toBe('virt');
    t.handleMmio(R.QueueSel, true, Uint8Array.of(1, 0, 0, 0));
    t.handleMmio(R.QueueNumMax, false, data);
    expect([...data]).toEqual([128, 0, 0, 0]);
  });

  it('reads and writes config space with 1, 2 and 4-byte accesses', () => {
    const { t, device, warnings } = make();
    device.config.set([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
    expect(t.read(R.Config, 4)).toBe(0x44332211);
    expect(t.read(R.Config + 4, 2)).toBe(0x6655);
    expect(t.read(R.Config + 7, 1)).toBe(0x88);
    t.write(R.Config + 2, 2, 0xbeef);
    expect([...device.config.subarray(0, 4)]).toEqual([0x11, 0x22, 0xef, 0xbe]);
    expect(t.read(R.Config + 1, 2)).toBe(0); // misaligned
    expect(t.read(R.Config, 8)).toBe(0);
    expect(warnings.length).toBe(2);
  });
});

describe('feature negotiation', () => {
  it('accepts a subset that includes VERSION_1', () => {
    const { t } = make();
    expect(negotiate(t, V1 | EVENT_IDX)).toBe(true);
    expect(t.negotiatedFeatures).toBe(V1 | EVENT_IDX);
    expect(r(t, R.Status)).toBe(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  });

  it('refuses features the device did not offer', () => {
    const { t, warnings } = make();
    expect(negotiate(t, V1 | featureBit(VirtioFeature.RING_PACKED))).toBe(false);
    expect(t.negotiatedFeatures).toBeUndefined();
    expect(warnings.some((m) => m.includes('unoffered'))).toBe(true);
  });

  it('refuses a legacy driver (no VERSION_1)', () => {
    const { t } = make();
    expect(negotiate(t, EVENT_IDX)).toBe(false);
  });

  it('lets the device veto a feature set', () => {
    const { t, device } = make();
    device.validateFeatures = (f) => (f & BLK_FLUSH) !== 0n;
    expect(negotiate(t, V1)).toBe(false);
    expect(negotiate(t, V1 | BLK_FLUSH)).toBe(true);
  });

  it('ignores DriverFeatures before DRIVER and after FEATURES_OK', () => {
    const { t } = make();
    w(t, R.Status, S.ACKNOWLEDGE);
    writeDriverFeatures(t, V1);
    w(t, R.Status, S.ACKNOWLEDGE | S.DRIVER);
    w(t, R.Status, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
    expect(r(t, R.Status) & S.FEATURES_OK).toBe(0); // V1 never arrived
    expect(negotiate(t, V1)).toBe(true);
    writeDriverFeatures(t, V1 | EVENT_IDX);
    expect(t.negotiatedFeatures).toBe(V1);
  });

  it('property: FEATURES_OK holds exactly when the driver set is a subset with VERSION_1', () => {
    const offered = V1 | EVENT_IDX | BLK_FLUSH | 0b110n;
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (features) => {
        const { t } = make({ features: offered });
        const ok = negotiate(t, features);
        expect(ok).toBe((features & ~offered) === 0n && (features & V1) !== 0n);
      }),
    );
  });
});

describe('device status state machine', () => {
  it('walks ACK → DRIVER → FEATURES_OK → DRIVER_OK and activates once with the queue set-up', () => {
    const { t, device } = make();
    const activated: unknown[] = [];
    t.activated$.subscribe((a) => activated.push(a));
    expect(negotiate(t, V1 | EVENT_IDX)).toBe(true);
    setupQueue(t, goodQueue);
    driverOk(t);
    expect(r(t, R.Status)).toBe(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
    expect(device.activations.length).toBe(1);
    const a = device.activations[0] as VirtioActivation;
    expect(a.features).toBe(V1 | EVENT_IDX);
    expect(a.queues[0]).toEqual({
      index: 0,
      size: 256,
      maxSize: 256,
      descTable: 0x10000n,
      driverArea: 0x11000n,
      deviceArea: 0x12000n,
      packed: false,
      eventIdx: true,
      indirect: false,
      ready: true,
    });
    expect(a.queues[1]?.ready).toBe(false);
    expect(activated).toEqual([{ features: a.features, queues: a.queues }]);
    expect(t.activated).toBe(true);
    driverOk(t); // writing the same value again changes nothing
    expect(device.activations.length).toBe(1);
  });

  it('ignores out-of-order steps and attempts to clear bits', () => {
    const { t, warnings } = make();
    w(t, R.Status, S.DRIVER);
    expect(r(t, R.Status)).toBe(0);
    w(t, R.Status, S.ACKNOWLEDGE);
    w(t, R.Status, S.ACKNOWLEDGE | S.DRIVER | S.DRIVER_OK);
    expect(r(t, R.Status)).toBe(S.ACKNOWLEDGE);
    w(t, R.Status, S.ACKNOWLEDGE | S.DRIVER);
    w(t, R.Status, S.ACKNOWLEDGE);
    expect(r(t, R.Status)).toBe(S.ACKNOWLEDGE | S.DRIVER);
    w(t, R.Status, 0x100);
    expect(warnings.length).toBe(4);
  });

  it('accepts FAILED, then only a reset', () => {
    const { t, device } = make();
    negotiate(t, V1);
    w(t, R.Status, r(t, R.Status) | S.FAILED);
    expect(r(t, R.Status) & S.FAILED).toBe(S.FAILED);
    driverOk(t);
    expect(device.activations.length).toBe(0);
    w(t, R.Status, 0);
    expect(r(t, R.Status)).toBe(0);
  });

  it('resets everything on a write of 0 and tells the device', () => {
    const { t, device, levels } = make();
    let resets = 0;
    t.reset$.subscribe(() => resets++);
    negotiate(t, V1);
    setupQueue(t, goodQueue);
    driverOk(t);
    t.signalUsedBuffer();
    const resetsBefore = device.resets;
    w(t, R.Status, 0);
    expect(device.resets).toBe(resetsBefore + 1);
    expect(resets).toBeGreaterThan(0);
    expect(r(t, R.Status)).toBe(0);
    expect(r(t, R.InterruptStatus)).toBe(0);
    expect(levels.at(-1)).toBe(false);
    expect(r(t, R.QueueReady)).toBe(0);
    expect(t.activated).toBe(false);
    expect(t.queueConfigs()[0]).toMatchObject({ descTable: 0n, ready: false, size: 256 });
    // the old activation's callbacks are dead after a reset
    (device.activations[0] as VirtioActivation).signalUsedBuffer(0);
    (device.activations[0] as VirtioActivation).needsReset(new Error('late'));
    expect(r(t, R.InterruptStatus)).toBe(0);
    expect(r(t, R.Status)).toBe(0);
  });
});

describe('queue set-up', () => {
  it('ignores set-up writes while the queue is ready or for a missing queue', () => {
    const { t, warnings } = make();
    negotiate(t, V1);
    setupQueue(t, goodQueue);
    w(t, R.QueueNum, 16);
    w(t, R.QueueDescLow, 0x5000);
    expect(t.queueConfigs()[0]).toMatchObject({ size: 256, descTable: 0x10000n });
    w(t, R.QueueSel, 7);
    w(t, R.QueueNum, 16);
    w(t, R.QueueReady, 1);
    expect(warnings.length).toBe(4);
  });

  const bad: [string, Partial<typeof goodQueue>][] = [
    ['size 0', { size: 0 }],
    ['size above QueueNumMax', { size: 512 }],
    ['size not a power of 2', { size: 100 }],
    ['misaligned descriptor table', { desc: 0x10008n }],
    ['misaligned avail ring', { driver: 0x11001n }],
    ['misaligned used ring', { device: 0x12002n }],
    ['area wrapping 2^64', { device: 0xffff_ffff_ffff_fc00n }],
    ['area outside guest memory', { desc: 0x4000_0000n }],
  ];
  for (const [name, change] of bad) {
    it(`goes to NEEDS_RESET at DRIVER_OK for ${name}`, () => {
      const { t, device, interrupts } = make(
        {},
        { isValidRange: (a: bigint, l: number) => a + BigInt(l) <= 0x100000n },
      );
      const events: NeedsResetEvent[] = [];
      t.needsReset$.subscribe((e) => events.push(e));
      negotiate(t, V1);
      setupQueue(t, { ...goodQueue, ...change });
      driverOk(t);
      expect(device.activations.length).toBe(0);
      expect(r(t, R.Status) & S.DEVICE_NEEDS_RESET).toBe(S.DEVICE_NEEDS_RESET);
      expect(r(t, R.InterruptStatus) & InterruptBit.CONFIG_CHANGE).toBe(InterruptBit.CONFIG_CHANGE);
      expect(interrupts.at(-1)?.bits).toBe(InterruptBit.CONFIG_CHANGE);
      expect(events.length).toBe(1);
      // the driver echoing NEEDS_RESET back is harmless; reset clears it
      w(t, R.Status, r(t, R.Status));
      w(t, R.Status, 0);
      expect(r(t, R.Status)).toBe(0);
    });
  }

  it('hands each queue the negotiated ring features; a packed ring takes any size up to QueueNumMax', () => {
    const PACKED = featureBit(VirtioFeature.RING_PACKED);
    const INDIRECT = featureBit(VirtioFeature.INDIRECT_DESC);
    const { t, device } = make({ features: V1 | EVENT_IDX | PACKED | INDIRECT });
    expect(t.queueConfigs()[0]).toMatchObject({ packed: false, eventIdx: false, indirect: false });
    expect(negotiate(t, V1 | PACKED | INDIRECT)).toBe(true);
    setupQueue(t, { ...goodQueue, size: 100 }); // not a power of two: legal for a packed ring only
    driverOk(t);
    expect(r(t, R.Status) & S.DEVICE_NEEDS_RESET).toBe(0);
    const queues = (device.activations[0] as VirtioActivation).queues;
    expect(queues[0]).toMatchObject({
      size: 100,
      packed: true,
      eventIdx: false,
      indirect: true,
      ready: true,
    });
    expect(queues[1]).toMatchObject({ packed: true, eventIdx: false, indirect: true, ready: false });
  });

  it('goes to NEEDS_RESET when activate throws or rejects', async () => {
    const { t, device } = make();
    device.activateImpl = () => {
      throw new Error('ring broken');
    };
    negotiate(t, V1);
    setupQueue(t, goodQueue);
    driverOk(t);
    expect(r(t, R.Status) & S.DEVICE_NEEDS_RESET).toBe(S.DEVICE_NEEDS_RESET);
    expect(t.activated).toBe(false);
    device.activateImpl = () => Promise.reject(new Error('later'));
    negotiate(t, V1);
    setupQueue(t, goodQueue);
    driverOk(t);
    expect(r(t, R.Status) & S.DEVICE_NEEDS_RESET).toBe(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(r(t, R.Status) & S.DEVICE_NEEDS_RESET).toBe(S.DEVICE_NEEDS_RESET);
    expect(t.activated).toBe(false);
  });

  it('lets an active device report a failure (NEEDS_RESET + config interrupt) and stops notifies', () => {
    const { t, device } = make();
    negotiate(t, V1);
    setupQueue(t, goodQueue);
    driverOk(t);
    w(t, R.QueueNotify, 0);
    expect(device.notifies).toEqual([0]);
    (device.activations[0] as VirtioActivation).needsReset(new Error('descriptor loop'));
    expect(r(t, R.Status) & S.DEVICE_NEEDS_RESET).toBe(S.DEVICE_NEEDS_RESET);
    expect(r(t, R.InterruptStatus)).toBe(InterruptBit.CONFIG_CHANGE);
    w(t, R.QueueNotify, 0);
    expect(device.notifies).toEqual([0]);
  });
});

describe('notifications and interrupts', () => {
  it('forwards QueueNotify only while active and for existing queues', () => {
    const { t, device, warnings } = make();
    const notified: number[] = [];
    t.notify$.subscribe((q) => notified.push(q));
    negotiate(t, V1);
    w(t, R.QueueNotify, 0);
    expect(device.notifies).toEqual([]);
    setupQueue(t, goodQueue);
    driverOk(t);
    w(t, R.QueueNotify, 1);
    w(t, R.QueueNotify, 5);
    t.notifyQueue(0);
    expect(device.notifies).toEqual([1, 0]);
    expect(notified).toEqual([1, 0]);
    expect(warnings.length).toBe(2);
  });

  it('takes the queue index from the low 16 bits with NOTIFICATION_DATA', () => {
    const { t, device } = make({ features: V1 | featureBit(VirtioFeature.NOTIFICATION_DATA) });
    negotiate(t, V1 | featureBit(VirtioFeature.NOTIFICATION_DATA));
    setupQueue(t, goodQueue);
    driverOk(t);
    w(t, R.QueueNotify, 0x0005_0001);
    expect(device.notifies).toEqual([1]);
  });

  it('sets InterruptStatus, raises the line, and clears on InterruptACK', () => {
    const { t, device, interrupts, levels } = make();
    negotiate(t, V1);
    setupQueue(t, goodQueue);
    driverOk(t);
    const a = device.activations[0] as VirtioActivation;
    a.signalUsedBuffer(0);
    a.signalUsedBuffer(0);
    expect(r(t, R.InterruptStatus)).toBe(InterruptBit.USED_BUFFER);
    expect(interrupts.length).toBe(2);
    expect(levels).toEqual([true]);
    const gen = r(t, R.ConfigGeneration);
    a.signalConfigChange();
    expect(r(t, R.ConfigGeneration)).toBe(gen + 1);
    expect(r(t, R.InterruptStatus)).toBe(InterruptBit.USED_BUFFER | InterruptBit.CONFIG_CHANGE);
    w(t, R.InterruptACK, InterruptBit.USED_BUFFER);
    expect(r(t, R.InterruptStatus)).toBe(InterruptBit.CONFIG_CHANGE);
    expect(levels).toEqual([true]);
    w(t, R.InterruptACK, InterruptBit.CONFIG_CHANGE);
    expect(levels).toEqual([true, false]);
  });

  it('gives the same events to on(name, listener) as to the x$ streams, until unsubscribed', () => {
    const { t, device } = make();
    const heard: boolean[] = [];
    const off = t.on('irqLevel', (l) => heard.push(l));
    const streamed: boolean[] = [];
    t.irqLevel$.subscribe((l) => streamed.push(l));
    negotiate(t, V1);
    setupQueue(t, goodQueue);
    driverOk(t);
    const a = device.activations[0] as VirtioActivation;
    a.signalUsedBuffer(0);
    w(t, R.InterruptACK, InterruptBit.USED_BUFFER);
    off();
    a.signalUsedBuffer(0);
    expect(heard).toEqual([true, false]);
    expect(streamed).toEqual([true, false, true]);
  });

  it('bumps ConfigGeneration without an interrupt before DRIVER_OK', () => {
    const { t, interrupts } = make();
    t.configChanged();
    expect(r(t, R.ConfigGeneration)).toBe(1);
    expect(interrupts.length).toBe(0);
  });

  it('reports the used-buffer bit permanently when queues are served elsewhere', () => {
    const { t } = make({}, { alwaysReportUsedBuffer: true });
    expect(r(t, R.InterruptStatus)).toBe(0);
    negotiate(t, V1);
    setupQueue(t, goodQueue);
    driverOk(t);
    expect(r(t, R.InterruptStatus)).toBe(InterruptBit.USED_BUFFER);
    w(t, R.InterruptACK, InterruptBit.USED_BUFFER);
    expect(r(t, R.InterruptStatus)).toBe(InterruptBit.USED_BUFFER);
  });
});

describe('hostile register traffic', () => {
  const regs = Object.values(R);
  it('property: arbitrary accesses never throw and keep the state machine consistent', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            offset: fc.oneof(fc.constantFrom(...regs), fc.integer({ min: 0, max: 0x1ff })),
            size: fc.constantFrom(1, 2, 4, 8, 3),
            value: fc.oneof(fc.integer({ min: 0, max: 0xff }), fc.nat(), fc.constant(0xffffffff)),
            write: fc.boolean(),
          }),
          { maxLength: 200 },
        ),
        (ops) => {
          const { t } = make();
          for (const op of ops) {
            if (op.write) t.write(op.offset, op.size, op.value);
            else t.read(op.offset, op.size);
            const status = r(t, R.Status);
            if (status & S.DRIVER_OK && !(status & S.FAILED))
              expect(status & S.FEATURES_OK).toBe(S.FEATURES_OK);
            if (t.activated) {
              expect(t.negotiatedFeatures).toBeDefined();
              expect((t.negotiatedFeatures as bigint) & ~t.offeredFeatures).toBe(0n);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
