import { DeviceStatus, featureBit, VirtioFeature } from '@rxvmm/virtio';
import { InterruptBit, MmioRegister as R } from '@rxvmm/virtio-mmio';
import { describe, expect, it } from 'vitest';
import { DeviceHost, type HostEvent } from './device-host.js';
import { MMIO_BASE, SharedState, SharedWord } from './layout.js';

const VERSION_1 = featureBit(VirtioFeature.VERSION_1);

function host() {
  const shared = new SharedState();
  const events: HostEvent[] = [];
  const kicks: number[] = [];
  const h = new DeviceHost({
    deviceType: 2,
    features: VERSION_1,
    queueMaxSizes: [16],
    config: new Uint8Array([0x10, 0, 0, 0, 0, 0, 0, 0]),
    ramSize: 1 << 20,
    shared: shared.buffer,
    emit: (e) => events.push(e),
    kick: (q) => kicks.push(q),
  });
  const le = (v: number) => new Uint8Array(new Uint32Array([v]).buffer);
  const w = (reg: number, v: number) => h.handleMmio(MMIO_BASE + BigInt(reg), true, le(v));
  const r = (reg: number) => {
    const d = new Uint8Array(4);
    h.handleMmio(MMIO_BASE + BigInt(reg), false, d);
    return new DataView(d.buffer).getUint32(0, true);
  };
  const start = (desc = 0x1000) => {
    w(R.Status, 0);
    w(R.Status, DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER);
    w(R.DriverFeaturesSel, 1);
    w(R.DriverFeatures, 1);
    w(R.Status, DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK);
    w(R.QueueNum, 16);
    w(R.QueueDescLow, desc);
    w(R.QueueDriverLow, 0x2000);
    w(R.QueueDeviceLow, 0x3000);
    w(R.QueueReady, 1);
    w(
      R.Status,
      DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK | DeviceStatus.DRIVER_OK,
    );
  };
  return { h, shared, events, kicks, w, r, start };
}

describe('DeviceHost (the register file on the vCPU thread)', () => {
  it('answers only its window; reports activation with the queue set-up; mirrors Status in shared memory', () => {
    const t = host();
    expect(t.h.handleMmio(MMIO_BASE - 4n, false, new Uint8Array(4))).toBe(false);
    expect(t.r(R.MagicValue)).toBe(0x74726976);
    expect(t.r(R.DeviceID)).toBe(2);
    expect(t.r(0x100)).toBe(0x10); // config space (capacity)
    t.start();
    const activated = t.events.find((e) => e.type === 'activated');
    expect(activated?.type === 'activated' && activated.info.queues[0]?.descTable).toBe(0x1000n);
    expect(t.shared.get(SharedWord.status)).toBe(0xf);
    // Completions bypass this register file: InterruptStatus always shows "used buffer".
    expect(t.r(R.InterruptStatus) & InterruptBit.USED_BUFFER).toBe(InterruptBit.USED_BUFFER);
  });

  it('a QueueNotify that reaches it becomes a kick (no ioeventfd)', () => {
    const t = host();
    t.start();
    t.w(R.QueueNotify, 0);
    expect(t.kicks).toEqual([0]);
  });

  it('a queue outside guest RAM: NEEDS_RESET, reported to the back-end side with an interrupt to inject', () => {
    const t = host();
    t.start(0x7fff_f000);
    expect(t.r(R.Status) & DeviceStatus.DEVICE_NEEDS_RESET).toBe(DeviceStatus.DEVICE_NEEDS_RESET);
    expect(t.events.map((e) => e.type)).toEqual(['reset', 'needs-reset', 'interrupt']);
    expect(t.events.some((e) => e.type === 'activated')).toBe(false);
  });

  it('takes NEEDS_RESET from the back-end through shared memory at the next access, without a second interrupt', () => {
    const t = host();
    t.start();
    t.events.length = 0;
    t.shared.set(SharedWord.needsReset, 1); // the back-end met a ring error (and injected the interrupt)
    const status = t.r(R.InterruptStatus);
    expect(status & InterruptBit.CONFIG_CHANGE).toBe(InterruptBit.CONFIG_CHANGE);
    expect(t.r(R.Status) & DeviceStatus.DEVICE_NEEDS_RESET).toBe(DeviceStatus.DEVICE_NEEDS_RESET);
    expect(t.events).toEqual([]);
    expect(t.shared.get(SharedWord.needsResetApplied)).toBe(1);
    // A reset clears it for the next driver.
    t.w(R.Status, 0);
    expect(t.shared.get(SharedWord.needsReset)).toBe(0);
    expect(t.r(R.Status)).toBe(0);
  });
});
