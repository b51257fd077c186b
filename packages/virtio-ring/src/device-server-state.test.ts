import type { ActivatedQueue, VirtioActivation } from '@rxvmm/virtio';
import { describe, expect, it } from 'vitest';
import { DeviceServer, type DeviceServerState } from './device-server.js';
import { EchoDevice, MockPackedDriver, MockSplitDriver } from './testing/index.js';

const settled = () => new Promise<void>((resolve) => setTimeout(resolve, 20));
const text = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);
const viaJson = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/** What a transport (restored or not) hands the device at DRIVER_OK. */
function activationFor(drv: MockSplitDriver | MockPackedDriver, features = 0n) {
  const calls = { interrupts: 0, resets: [] as unknown[] };
  const queue: ActivatedQueue = {
    ...drv.config,
    index: 0,
    maxSize: 256,
    packed: drv.config.packed ?? false,
    eventIdx: drv.config.eventIdx ?? false,
    indirect: drv.config.indirect ?? false,
    ready: true,
  };
  const activation: VirtioActivation = {
    features,
    queues: [queue],
    signalUsedBuffer: () => calls.interrupts++,
    signalConfigChange: () => undefined,
    needsReset: (reason) => calls.resets.push(reason),
  };
  return { activation, calls };
}

for (const Driver of [MockSplitDriver, MockPackedDriver]) {
  const kind = Driver === MockSplitDriver ? 'split' : 'packed';
  describe(`DeviceServer pause, state and restore (${kind} ring)`, () => {
    it('pause() lets the chains in flight complete and publish; state() is EBUSY while serving', async () => {
      const drv = new Driver({ size: 16, eventIdx: true });
      const server = new DeviceServer(new EchoDevice({ delayMs: 5 }), drv.memory);
      server.activate(activationFor(drv).activation);
      expect(() => server.state()).toThrow(expect.objectContaining({ code: 'EBUSY' }));
      drv.add({ readable: [text('one')], writable: [8] });
      drv.add({ readable: [text('two')], writable: [8] });
      server.queueNotify(0);
      await server.pause();
      expect(server.paused).toBe(true);
      expect(drv.drainUsed().map((u) => decode(u.written))).toEqual(['ONE', 'TWO']);
      const state = server.state();
      expect(state.queues[0]).toMatchObject({ kind, version: 1 });
    });

    it('kicks while paused are served on resume()', async () => {
      const drv = new Driver({ size: 16 });
      const server = new DeviceServer(new EchoDevice(), drv.memory);
      server.activate(activationFor(drv).activation);
      await server.pause();
      drv.add({ readable: [text('later')], writable: [8] });
      server.queueNotify(0);
      expect(drv.getUsed()).toBeNull();
      server.resume();
      expect(decode(drv.getUsed()!.written)).toBe('LATER');
    });

    it('round-trips: state → JSON → restoreState + activate → pause → state is the same value', async () => {
      const drv = new Driver({ size: 16, eventIdx: true });
      const device = new EchoDevice();
      const server = new DeviceServer(device, drv.memory);
      server.activate(activationFor(drv, 1n << 29n).activation);
      server.writeConfig(0, Uint8Array.of(0xaa));
      for (let i = 0; i < 21; i++) {
        drv.add({ readable: [text(`r${i}`)], writable: [8] });
        server.queueNotify(0);
        drv.drainUsed();
      }
      await server.pause();
      const saved = viaJson(server.state());
      expect(saved).toMatchObject({ version: 1, features: String(1n << 29n), failure: null });
      expect(saved.device).toEqual({ version: 1, config: [0xaa, ...device.config.subarray(1)] });
      const again = new DeviceServer(new EchoDevice(), drv.memory);
      again.restoreState(saved);
      again.activate(activationFor(drv, 1n << 29n).activation);
      await again.pause();
      expect(viaJson(again.state())).toEqual(saved);
    });

    it('a restored server serves a doorbell rung after the snapshot was taken, and continues the indices', async () => {
      const drv = new Driver({ size: 8, eventIdx: true });
      const server = new DeviceServer(new EchoDevice({ async: true }), drv.memory);
      server.activate(activationFor(drv).activation);
      drv.driver.enableInterrupts();
      for (let i = 0; i < 11; i++) {
        drv.add({ readable: [text(`r${i}`)], writable: [8] });
        server.queueNotify(0);
        await settled();
        drv.drainUsed();
        drv.driver.enableInterrupts();
      }
      await server.pause();
      // The guest publishes a chain and rings the doorbell: nobody serves it before the snapshot.
      drv.add({ readable: [text('pending')], writable: [8] });
      server.queueNotify(0);
      const saved = viaJson(server.state());
      // A fresh device (a new process), the same guest RAM.
      const restored = new DeviceServer(new EchoDevice({ async: true }), drv.memory);
      restored.restoreState(saved);
      const { activation, calls } = activationFor(drv);
      restored.activate(activation);
      await settled();
      const used = drv.drainUsed();
      expect(used.map((u) => decode(u.written))).toEqual(['PENDING']);
      expect(calls.interrupts).toBe(1);
      await restored.pause();
      const after = restored.state().queues[0]!;
      // 12 chains: split counts them; packed used 2 ring slots each (24 = 3 laps of 8, wrap counter 1 → 0).
      if (after.kind === 'split') expect(after.nextUsed).toBe(12);
      else expect([after.usedPos, after.usedWrap]).toEqual([0, 0]);
    });
  });
}

describe('DeviceServer.restoreState refuses what it cannot resume', () => {
  async function savedState(): Promise<{ drv: MockSplitDriver; saved: DeviceServerState }> {
    const drv = new MockSplitDriver({ size: 8 });
    const server = new DeviceServer(new EchoDevice(), drv.memory);
    server.activate(activationFor(drv, 1n << 28n).activation);
    await server.pause();
    return { drv, saved: viaJson(server.state()) };
  }

  const hostile: [string, (s: DeviceServerState) => unknown][] = [
    ['another version', (s) => ({ ...s, version: 2 })],
    ['another device type', (s) => ({ ...s, deviceType: 2 })],
    ['a queue too many', (s) => ({ ...s, queues: [...s.queues, null] })],
    ['features never offered', (s) => ({ ...s, features: String(1n << 40n) })],
    ['features not a decimal string', (s) => ({ ...s, features: '0x10' })],
    ['a hostile queue state', (s) => ({ ...s, queues: [{ ...s.queues[0], nextAvail: -1 }] })],
    ['a hostile device state', (s) => ({ ...s, device: { version: 1, config: [256] } })],
    ['queues without features', (s) => ({ ...s, features: null })],
  ];
  it.each(hostile)('%s: EINVAL', async (_, mutate) => {
    const { drv, saved } = await savedState();
    const server = new DeviceServer(new EchoDevice(), drv.memory);
    expect(() => server.restoreState(mutate(saved) as DeviceServerState)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    // Nothing was loaded: a plain activation starts the queue at 0.
    server.activate(activationFor(drv).activation);
    await server.pause();
    expect(server.state().queues[0]).toMatchObject({ nextAvail: 0, nextUsed: 0 });
  });

  it('an active server: EBUSY', async () => {
    const { drv, saved } = await savedState();
    const server = new DeviceServer(new EchoDevice(), drv.memory);
    server.activate(activationFor(drv).activation);
    expect(() => server.restoreState(saved)).toThrow(expect.objectContaining({ code: 'EBUSY' }));
  });

  it('an activation with other features or another layout fails (the transport sets NEEDS_RESET)', async () => {
    const { drv, saved } = await savedState();
    const server = new DeviceServer(new EchoDevice(), drv.memory);
    server.restoreState(saved);
    expect(() => server.activate(activationFor(drv, 0n).activation)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    server.restoreState(saved);
    const { activation } = activationFor(drv, 1n << 28n);
    const moved = { ...activation, queues: [{ ...activation.queues[0]!, size: 4 }] };
    expect(() => server.activate(moved)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('a failed device is restored failed', async () => {
    const drv = new MockSplitDriver({ size: 8 });
    const server = new DeviceServer(new EchoDevice(), drv.memory);
    server.activate(activationFor(drv).activation);
    drv.publishHead(42);
    server.queueNotify(0);
    const saved = viaJson(server.state());
    expect(saved.failure).toMatch(/head 42/);
    expect(saved.queues[0]!.broken).toMatchObject({ reason: 'head-out-of-range' });
    const restored = new DeviceServer(new EchoDevice(), drv.memory);
    restored.restoreState(saved);
    expect(String(restored.failure)).toMatch(/head 42/);
  });
});
