import type { ActivatedQueue, VirtioActivation } from '@rxvmm/virtio';
import { describe, expect, it } from 'vitest';
import { DeviceServer } from './device-server.js';
import { VirtqueueError } from './errors.js';
import { EchoDevice, MockPackedDriver, MockSplitDriver } from './testing/index.js';

/** Long enough for the echo device's timer-completed requests to finish. */
const settled = () => new Promise<void>((resolve) => setTimeout(resolve, 20));

/** What a transport hands the device at DRIVER_OK, recording what the device calls back. */
function activationFor(drv: MockSplitDriver | MockPackedDriver, maxSize = 256) {
  const calls = { interrupts: 0, resets: [] as unknown[] };
  const queue: ActivatedQueue = {
    ...drv.config,
    index: 0,
    maxSize,
    packed: drv.config.packed ?? false,
    eventIdx: drv.config.eventIdx ?? false,
    indirect: drv.config.indirect ?? false,
    ready: true,
  };
  const activation: VirtioActivation = {
    features: 0n,
    queues: [queue],
    signalUsedBuffer: () => calls.interrupts++,
    signalConfigChange: () => undefined,
    needsReset: (reason) => calls.resets.push(reason),
  };
  return { activation, calls };
}

const text = (s: string) => new TextEncoder().encode(s);

describe('DeviceServer: a ChainDevice hosted behind a transport', () => {
  for (const Driver of [MockSplitDriver, MockPackedDriver]) {
    it(`serves the echo device on a ${Driver === MockSplitDriver ? 'split' : 'packed'} ring`, async () => {
      const drv = new Driver({ size: 16, eventIdx: true });
      const server = new DeviceServer(new EchoDevice({ async: true }), drv.memory);
      const { activation, calls } = activationFor(drv);
      server.activate(activation);
      drv.driver.enableInterrupts();
      drv.add({ readable: [text('ping')], writable: [16] });
      drv.add({ readable: [text('pong')], writable: [16] });
      server.queueNotify(0);
      await settled();
      expect(drv.drainUsed().map((u) => new TextDecoder().decode(u.written))).toEqual(['PING', 'PONG']);
      expect(calls.interrupts).toBeGreaterThanOrEqual(1);
      expect((server.device as EchoDevice).handled).toBe(2);
      const config = new Uint8Array(4);
      server.readConfig(14, config);
      expect([...config]).toEqual([15, 16, 0, 0]); // past the end reads as 0
    });
  }

  it('a hostile ring: NEEDS_RESET once, the queue stops, reset makes it usable again', async () => {
    const drv = new MockSplitDriver({ size: 8 });
    const server = new DeviceServer(new EchoDevice(), drv.memory);
    const { activation, calls } = activationFor(drv);
    server.activate(activation);
    drv.publishHead(42);
    server.queueNotify(0);
    server.queueNotify(0);
    expect(calls.resets).toHaveLength(1);
    expect(calls.resets[0]).toBeInstanceOf(VirtqueueError);
    expect(server.failure).toBe(calls.resets[0]);
    await server.reset();
    expect(server.failure).toBeUndefined();
    const fresh = new MockSplitDriver({ size: 8 });
    const again = new DeviceServer(new EchoDevice(), fresh.memory);
    const next = activationFor(fresh);
    again.activate(next.activation);
    fresh.add({ readable: [text('ok')], writable: [8] });
    again.queueNotify(0);
    expect(new TextDecoder().decode(fresh.getUsed()!.written)).toBe('OK');
  });

  it('a device that fails a request (hostile length) sends the device to NEEDS_RESET, not the process', () => {
    const drv = new MockSplitDriver({ size: 8, memoryBytes: 1 << 20 });
    const server = new DeviceServer(new EchoDevice(), drv.memory);
    const { activation, calls } = activationFor(drv);
    server.activate(activation);
    drv.add({ readable: [new Uint8Array(65 * 1024)], writable: [8] });
    server.queueNotify(0);
    expect(calls.resets).toHaveLength(1);
    expect((calls.resets[0] as { code?: string }).code).toBe('EMSGSIZE');
  });

  it('reset abandons requests in flight: their completions never touch the ring', async () => {
    const drv = new MockSplitDriver({ size: 8 });
    const server = new DeviceServer(new EchoDevice({ async: true }), drv.memory);
    const { activation } = activationFor(drv);
    server.activate(activation);
    drv.add({ readable: [text('late')], writable: [8] });
    server.queueNotify(0);
    await server.reset();
    await settled();
    expect(drv.drainUsed()).toHaveLength(0);
  });

  it('a queue layout outside guest memory fails activation (the transport sets NEEDS_RESET)', () => {
    const drv = new MockSplitDriver({ size: 8 });
    const server = new DeviceServer(new EchoDevice(), drv.memory);
    const { activation } = activationFor(drv);
    const bad = { ...activation, queues: [{ ...activation.queues[0]!, descTable: 1n << 40n }] };
    expect(() => server.activate(bad)).toThrow(VirtqueueError);
  });
});
