import { describe, expect, it } from 'vitest';
import { featureBit, hasFeature, VirtioFeature } from './features.js';

describe('feature bits', () => {
  it('featureBit is the mask of a bit number, across the 32-bit boundary', () => {
    expect(featureBit(0)).toBe(1n);
    expect(featureBit(VirtioFeature.EVENT_IDX)).toBe(0x2000_0000n);
    expect(featureBit(VirtioFeature.VERSION_1)).toBe(0x1_0000_0000n);
    expect(featureBit(63)).toBe(1n << 63n);
  });

  it('hasFeature tests one bit of a feature set', () => {
    const features = featureBit(VirtioFeature.VERSION_1) | featureBit(VirtioFeature.RING_PACKED);
    expect(hasFeature(features, VirtioFeature.VERSION_1)).toBe(true);
    expect(hasFeature(features, VirtioFeature.RING_PACKED)).toBe(true);
    expect(hasFeature(features, VirtioFeature.EVENT_IDX)).toBe(false);
    expect(hasFeature(0n, VirtioFeature.VERSION_1)).toBe(false);
  });

  it('the reserved bits have the spec numbers (virtio 1.2 section 6)', () => {
    expect(VirtioFeature).toEqual({
      INDIRECT_DESC: 28,
      EVENT_IDX: 29,
      VERSION_1: 32,
      ACCESS_PLATFORM: 33,
      RING_PACKED: 34,
      IN_ORDER: 35,
      ORDER_PLATFORM: 36,
      SR_IOV: 37,
      NOTIFICATION_DATA: 38,
      NOTIF_CONFIG_DATA: 39,
      RING_RESET: 40,
    });
  });
});
