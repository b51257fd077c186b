import { featureBit, DeviceStatus as S, VirtioFeature } from '@rxvmm/virtio';
import { DeviceServer, GuestMemory, SplitDriver, VirtqueueError } from '@rxvmm/virtio-ring';
import { EchoDevice } from '@rxvmm/virtio-ring/testing';
import { describe, expect, it } from 'vitest';
import { InterruptBit, MmioRegister as R } from './constants.js';
import { ExternalDevice } from './external-device.js';
import { driverOk, negotiate, r, setupQueue, w } from './test-support/driver.js';
import { type NeedsResetEvent, VirtioMmioTransport } from './transport.js';

const V1 = featureBit(VirtioFeature.VERSION_1);
const Q = { index: 0, size: 64, desc: 0x1000n, driver: 0x2000n, device: 0x3000n };

function rig() {
  const mem = new GuestMemory([{ guestPhysAddr: 0n, bytes: new Uint8Array(1 << 16) }]);
  // The library's echo device, served by the library's loop: the same device vhost-user hosts.
  const device = new DeviceServer(new EchoDevice({ queueSize: 64 }), mem);
  const transport = new VirtioMmioTransport(device, { isValidRange: (a, l) => mem.isValidRange(a, l) });
  const events: NeedsResetEvent[] = [];
  transport.needsReset$.subscribe((e) => events.push(e));
  const start = () => {
    negotiate(transport, V1);
    setupQueue(transport, Q);
    driverOk(transport);
    return new SplitDriver(mem, {
      size: Q.size,
      descTable: Q.desc,
      driverArea: Q.driver,
      deviceArea: Q.device,
    });
  };
  return { mem, device, transport, events, start };
}

describe('a ring-backed device (DeviceServer + EchoDevice) behind the transport', () => {
  it('serves a chain and raises a used-buffer interrupt', () => {
    const { mem, transport, start } = rig();
    const driver = start();
    mem.write(0x8000n, new TextEncoder().encode('ping'));
    driver.add([{ addr: 0x8000n, len: 4 }], [{ addr: 0x9000n, len: 16 }]);
    w(transport, R.QueueNotify, 0);
    expect(driver.getUsed()).toMatchObject({ len: 4 });
    expect(new TextDecoder().decode(mem.slice(0x9000n, 4))).toBe('PING');
    expect(r(transport, R.InterruptStatus)).toBe(InterruptBit.USED_BUFFER);
  });

  it('a broken ring (head index out of range) gives DEVICE_NEEDS_RESET + config interrupt; a reset recovers', () => {
    const { mem, transport, events, start } = rig();
    start();
    mem.writeU16(Q.driver + 4n, 200); // ring[0] = 200 >= size 64
    mem.writeU16(Q.driver + 2n, 1); // avail idx = 1
    w(transport, R.QueueNotify, 0);
    expect(r(transport, R.Status) & S.DEVICE_NEEDS_RESET).toBe(S.DEVICE_NEEDS_RESET);
    expect(r(transport, R.InterruptStatus) & InterruptBit.CONFIG_CHANGE).toBe(InterruptBit.CONFIG_CHANGE);
    expect(events[0]?.error).toBeInstanceOf(VirtqueueError);
    expect(events[0]?.error).toMatchObject({ reason: 'head-out-of-range' });
    w(transport, R.Status, 0);
    const driver = start();
    expect(r(transport, R.Status)).toBe(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
    mem.write(0x8000n, Uint8Array.of(1, 2, 3));
    driver.add([{ addr: 0x8000n, len: 3 }], [{ addr: 0x9000n, len: 3 }]);
    w(transport, R.QueueNotify, 0);
    expect(driver.getUsed()).toMatchObject({ len: 3 });
  });

  it('an avail index that jumps past the queue size gives DEVICE_NEEDS_RESET', () => {
    const { mem, transport, start } = rig();
    start();
    mem.writeU16(Q.driver + 2n, 65);
    w(transport, R.QueueNotify, 0);
    expect(r(transport, R.Status) & S.DEVICE_NEEDS_RESET).toBe(S.DEVICE_NEEDS_RESET);
  });

  it('a queue placed outside guest memory is refused at DRIVER_OK', () => {
    const { transport, events } = rig();
    negotiate(transport, V1);
    setupQueue(transport, { ...Q, device: 0xff00n });
    driverOk(transport);
    expect(r(transport, R.Status) & S.DEVICE_NEEDS_RESET).toBe(S.DEVICE_NEEDS_RESET);
    expect(events[0]?.reason).toContain('outside guest memory');
  });
});

describe('ExternalDevice: queues served elsewhere', () => {
  it('hands features and queue addresses over on activation, forwards kicks, config and resets', () => {
    const configWrites: [number, number[]][] = [];
    const device = new ExternalDevice({
      deviceType: 2,
      features: V1 | featureBit(VirtioFeature.EVENT_IDX),
      queueMaxSizes: [128, 128],
      config: Uint8Array.of(0x10, 0, 0, 0, 0, 0, 0, 0),
      onConfigWrite: (offset, data) => configWrites.push([offset, [...data]]),
    });
    const transport = new VirtioMmioTransport(device, { alwaysReportUsedBuffer: true });
    const handed: unknown[] = [];
    const kicks: number[] = [];
    let resets = 0;
    device.activated$.subscribe((a) => handed.push(a));
    device.kick$.subscribe((q) => kicks.push(q));
    device.reset$.subscribe(() => resets++);
    expect(transport.read(R.Config, 4)).toBe(0x10);
    negotiate(transport, V1 | featureBit(VirtioFeature.EVENT_IDX));
    setupQueue(transport, { index: 1, size: 64, desc: 0x4000n, driver: 0x5000n, device: 0x6000n });
    driverOk(transport);
    expect(handed).toEqual([
      {
        features: V1 | featureBit(VirtioFeature.EVENT_IDX),
        queues: [
          {
            index: 0,
            size: 128,
            maxSize: 128,
            descTable: 0n,
            driverArea: 0n,
            deviceArea: 0n,
            packed: false,
            eventIdx: true,
            indirect: false,
            ready: false,
          },
          {
            index: 1,
            size: 64,
            maxSize: 128,
            descTable: 0x4000n,
            driverArea: 0x5000n,
            deviceArea: 0x6000n,
            packed: false,
            eventIdx: true,
            indirect: false,
            ready: true,
          },
        ],
      },
    ]);
    w(transport, R.QueueNotify, 1);
    expect(kicks).toEqual([1]);
    // the remote side's call eventfd goes straight to an irqfd: InterruptStatus still says "used buffer"
    expect(r(transport, R.InterruptStatus)).toBe(InterruptBit.USED_BUFFER);
    transport.write(R.Config + 4, 2, 0xabcd);
    expect(configWrites).toEqual([[4, [0xcd, 0xab]]]);
    device.setConfig(Uint8Array.of(0x20));
    transport.configChanged();
    expect(transport.read(R.Config, 1)).toBe(0x20);
    expect(r(transport, R.InterruptStatus) & InterruptBit.CONFIG_CHANGE).toBe(InterruptBit.CONFIG_CHANGE);
    device.activation?.needsReset(new Error('back-end went away'));
    expect(r(transport, R.Status) & S.DEVICE_NEEDS_RESET).toBe(S.DEVICE_NEEDS_RESET);
    w(transport, R.Status, 0);
    expect(resets).toBe(1);
    expect(device.activation).toBeUndefined();
  });
});
