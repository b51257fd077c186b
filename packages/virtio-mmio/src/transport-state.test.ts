import { featureBit, DeviceStatus as S, VirtioFeature } from '@rxvmm/virtio';
import { DeviceServer, GuestMemory, SplitDriver } from '@rxvmm/virtio-ring';
import { EchoDevice } from '@rxvmm/virtio-ring/testing';
import { describe, expect, it } from 'vitest';
import { InterruptBit, MmioRegister as R } from './constants.js';
import { driverOk, negotiate, r, setupQueue, w } from './test-support/driver.js';
import { FakeDevice } from './test-support/fake-device.js';
import { VirtioMmioTransport } from './transport.js';
import type { VirtioMmioTransportState } from './transport-state.js';

const V1 = featureBit(VirtioFeature.VERSION_1);
const EVENT_IDX = featureBit(VirtioFeature.EVENT_IDX);
const viaJson = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
const Q0 = { index: 0, size: 128, desc: 0x10000n, driver: 0x11000n, device: 0x12000n };
const Q1 = { index: 1, size: 64, desc: 0x1_0002_0000n, driver: 0x1_0002_1000n, device: 0x1_0002_2000n };

const newDevice = () => new FakeDevice({ features: V1 | EVENT_IDX, queueMaxSizes: [256, 128] });

/** Transports at the points of a device's life a snapshot can catch. */
const lifecycle: [string, (t: VirtioMmioTransport) => void][] = [
  ['fresh', () => undefined],
  [
    'in feature negotiation (selectors moved, half the features written)',
    (t) => {
      w(t, R.Status, S.ACKNOWLEDGE);
      w(t, R.Status, S.ACKNOWLEDGE | S.DRIVER);
      w(t, R.DeviceFeaturesSel, 1);
      w(t, R.DriverFeaturesSel, 1);
      w(t, R.DriverFeatures, 1);
    },
  ],
  [
    'queues set up, before DRIVER_OK',
    (t) => {
      negotiate(t, V1 | EVENT_IDX);
      setupQueue(t, Q0);
      w(t, R.QueueSel, 1);
      w(t, R.QueueNum, 32);
    },
  ],
  [
    'activated, an interrupt pending, the configuration changed twice',
    (t) => {
      negotiate(t, V1 | EVENT_IDX);
      setupQueue(t, Q0);
      setupQueue(t, Q1);
      driverOk(t);
      t.configChanged();
      t.configChanged();
      t.signalUsedBuffer();
      w(t, R.SHMSel, 3);
    },
  ],
  [
    'in NEEDS_RESET',
    (t) => {
      negotiate(t, V1);
      setupQueue(t, Q0);
      driverOk(t);
      t.setNeedsReset('test');
    },
  ],
];

/** Every register the driver can read, and the configuration space. */
function readAll(t: VirtioMmioTransport): number[] {
  const values: number[] = [];
  for (const sel of [0, 1, 2]) {
    w(t, R.QueueSel, sel);
    w(t, R.DeviceFeaturesSel, sel);
    for (let reg = 0; reg < 0x100; reg += 4) {
      values.push(r(t, reg));
    }
  }
  for (let off = 0; off < 16; off++) values.push(t.read(0x100 + off, 1));
  return values;
}

describe('VirtioMmioTransport state as plain data', () => {
  it.each(lifecycle)('round-trips %s: state → JSON → fromState → state is the same value', (_, reach) => {
    const t = new VirtioMmioTransport(newDevice());
    reach(t);
    const saved = viaJson(t.state());
    expect(saved.version).toBe(1);
    const restored = VirtioMmioTransport.fromState(newDevice(), saved);
    expect(viaJson(restored.state())).toEqual(saved);
  });

  it.each(lifecycle)('a transport restored %s reads and reacts like the original', (_, reach) => {
    const original = new VirtioMmioTransport(newDevice());
    reach(original);
    const device = newDevice();
    const restored = VirtioMmioTransport.fromState(device, viaJson(original.state()));
    const sel = original.state();
    w(original, R.QueueSel, sel.queueSel); // readAll moves the selectors: compare from the same ones
    expect(readAll(restored)).toEqual(readAll(original));
    // The same writes from here give the same state.
    for (const t of [original, restored]) {
      w(t, R.InterruptACK, InterruptBit.USED_BUFFER);
      w(t, R.Status, r(t, R.Status) | S.DRIVER_OK);
      w(t, R.QueueNotify, 0);
    }
    expect(restored.state()).toEqual(original.state());
  });

  it('an activated transport activates the restored device again with the same features and queues', () => {
    const original = new VirtioMmioTransport(newDevice());
    lifecycle[3]![1](original);
    const device = newDevice();
    const restored = VirtioMmioTransport.fromState(device, viaJson(original.state()));
    expect(device.activations).toHaveLength(1);
    expect(device.activations[0]!.features).toBe(V1 | EVENT_IDX);
    expect(device.activations[0]!.queues.map((q) => [q.ready, q.size, q.descTable, q.eventIdx])).toEqual([
      [true, 128, Q0.desc, true],
      [true, 64, Q1.desc, true],
    ]);
    expect(restored.activated).toBe(true);
    device.activations[0]!.signalUsedBuffer(0);
    expect(restored.interruptStatus).toBe(InterruptBit.USED_BUFFER | InterruptBit.CONFIG_CHANGE);
  });

  it('a transport in NEEDS_RESET is restored there, without activating the device', () => {
    const original = new VirtioMmioTransport(newDevice());
    lifecycle[4]![1](original);
    const device = newDevice();
    const restored = VirtioMmioTransport.fromState(device, viaJson(original.state()));
    expect(device.activations).toHaveLength(0);
    expect(restored.status & S.DEVICE_NEEDS_RESET).toBe(S.DEVICE_NEEDS_RESET);
    w(restored, R.Status, 0);
    expect(restored.status).toBe(0);
  });

  describe('refuses a state it could not have reached: EINVAL, and the device is not touched', () => {
    const t = new VirtioMmioTransport(newDevice());
    lifecycle[3]![1](t);
    const good = viaJson(t.state());
    const cases: [string, (s: VirtioMmioTransportState) => unknown][] = [
      ['not an object', () => null],
      ['another version', (s) => ({ ...s, version: 2 })],
      ['another device type', (s) => ({ ...s, deviceType: 1 })],
      ['other offered features', (s) => ({ ...s, offeredFeatures: '1' })],
      ['other queue sizes', (s) => ({ ...s, queueMaxSizes: [256] })],
      ['a queue missing', (s) => ({ ...s, queues: s.queues.slice(1) })],
      ['a status past 8 bits', (s) => ({ ...s, status: 0x100 })],
      ['an unknown interrupt bit', (s) => ({ ...s, interruptStatus: 4 })],
      ['a fractional selector', (s) => ({ ...s, queueSel: 0.5 })],
      ['features as a number', (s) => ({ ...s, driverFeatures: 1 })],
      ['features the device never offered', (s) => ({ ...s, driverFeatures: String(V1 | (1n << 40n)) })],
      ['FEATURES_OK without VERSION_1', (s) => ({ ...s, driverFeatures: String(EVENT_IDX) })],
      ['DRIVER_OK without FEATURES_OK', (s) => ({ ...s, status: S.ACKNOWLEDGE | S.DRIVER | S.DRIVER_OK })],
      ['activated without DRIVER_OK', (s) => ({ ...s, status: S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK })],
      [
        'a queue address past 2^64',
        (s) => ({ ...s, queues: [{ ...s.queues[0]!, descTable: String(1n << 64n) }, s.queues[1]] }),
      ],
      [
        'an activated queue misaligned',
        (s) => ({ ...s, queues: [{ ...s.queues[0]!, descTable: '65537' }, s.queues[1]] }),
      ],
      ['a ready flag as a number', (s) => ({ ...s, queues: [{ ...s.queues[0]!, ready: 1 }, s.queues[1]] })],
    ];
    it.each(cases)('%s', (_, mutate) => {
      const device = newDevice();
      expect(() =>
        VirtioMmioTransport.fromState(device, mutate(viaJson(good)) as VirtioMmioTransportState),
      ).toThrow(expect.objectContaining({ code: 'EINVAL' }));
      expect(device.activations).toHaveLength(0);
    });
  });
});

describe('a transport and its DeviceServer snapshotted together', () => {
  it('the restored pair serves the chain whose doorbell was rung before the snapshot', async () => {
    const bytes = new Uint8Array(1 << 16);
    const mem = new GuestMemory([{ guestPhysAddr: 0n, bytes }]);
    const Q = { index: 0, size: 64, desc: 0x1000n, driver: 0x2000n, device: 0x3000n };
    const server = new DeviceServer(new EchoDevice({ queueSize: 64 }), mem);
    const transport = new VirtioMmioTransport(server, { isValidRange: (a, l) => mem.isValidRange(a, l) });
    negotiate(transport, V1);
    setupQueue(transport, Q);
    driverOk(transport);
    const driver = new SplitDriver(mem, {
      size: 64,
      descTable: Q.desc,
      driverArea: Q.driver,
      deviceArea: Q.device,
    });
    mem.write(0x8000n, new TextEncoder().encode('first'));
    driver.add([{ addr: 0x8000n, len: 5 }], [{ addr: 0x9000n, len: 16 }]);
    w(transport, R.QueueNotify, 0);
    expect(driver.getUsed()).toMatchObject({ len: 5 });
    await server.pause();
    mem.write(0x8100n, new TextEncoder().encode('second'));
    driver.add([{ addr: 0x8100n, len: 6 }], [{ addr: 0x9100n, len: 16 }]);
    w(transport, R.QueueNotify, 0); // rung, not served: the device is paused
    const saved = viaJson({ transport: transport.state(), device: server.state() });
    const ram = bytes.slice();

    // A new process: fresh memory with the saved bytes, a fresh device, the device state first.
    const mem2 = new GuestMemory([{ guestPhysAddr: 0n, bytes: ram }]);
    const server2 = new DeviceServer(new EchoDevice({ queueSize: 64 }), mem2);
    server2.restoreState(saved.device);
    const transport2 = VirtioMmioTransport.fromState(server2, saved.transport, {
      isValidRange: (a, l) => mem2.isValidRange(a, l),
    });
    expect(new TextDecoder().decode(mem2.slice(0x9100n, 6))).toBe('SECOND');
    expect(r(transport2, R.InterruptStatus) & InterruptBit.USED_BUFFER).toBe(InterruptBit.USED_BUFFER);
    expect(mem2.readU16(Q.device + 2n)).toBe(2); // used idx: both chains
  });
});
