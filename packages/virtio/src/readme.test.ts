// The README example, checked.
import { expect, it } from 'vitest';
import {
  DeviceStatus,
  featureBit,
  hasFeature,
  queueLayoutError,
  queueSizeError,
  type VirtioActivation,
  type VirtioDevice,
  VirtioDeviceType,
  VirtioFeature,
} from './index.js';

it('README: a VirtioDevice literal, feature bits, the queue-size rule and queueLayoutError', () => {
  let activation: VirtioActivation | undefined;
  const entropy: VirtioDevice = {
    deviceType: VirtioDeviceType.ENTROPY,
    features: featureBit(VirtioFeature.VERSION_1) | featureBit(VirtioFeature.EVENT_IDX),
    queueMaxSizes: [64],
    readConfig: (_offset, data) => data.fill(0),
    writeConfig: () => {},
    activate(a) {
      activation = a;
    },
    reset() {
      activation = undefined;
    },
    queueNotify(queue) {
      activation?.signalUsedBuffer(queue);
    },
  };

  // The device as a transport drives it.
  const used: number[] = [];
  entropy.activate({
    features: featureBit(VirtioFeature.VERSION_1),
    queues: [],
    signalUsedBuffer: (i) => used.push(i),
    signalConfigChange: () => {},
    needsReset: () => {},
  });
  entropy.queueNotify(0);
  expect(used).toEqual([0]);
  void entropy.reset();
  entropy.queueNotify(0);
  expect(used).toEqual([0]);
  expect(entropy.deviceType).toBe(4);

  const negotiated = featureBit(VirtioFeature.VERSION_1);
  expect(hasFeature(negotiated, VirtioFeature.VERSION_1)).toBe(true);
  expect(hasFeature(negotiated, VirtioFeature.EVENT_IDX)).toBe(false);

  expect(queueSizeError(3, false)).toBe('split queue size 3 is not a power of two');
  expect(queueSizeError(3, true)).toBeUndefined();
  const queue = {
    index: 0,
    size: 64,
    maxSize: 64,
    descTable: 0x1000n,
    driverArea: 0x1400n,
    deviceArea: 0x1600n,
  };
  const inRam = (addr: bigint, len: number) => addr + BigInt(len) <= 0x10_0000n;
  expect(queueLayoutError(queue, { isValidRange: inRam })).toBeUndefined();
  expect(queueLayoutError({ ...queue, driverArea: 0x1401n }, { isValidRange: inRam })).toBe(
    'queue 0: driver area 0x1401 is not 2-byte aligned',
  );
  expect(DeviceStatus.DRIVER_OK | DeviceStatus.FEATURES_OK).toBe(12);
});
