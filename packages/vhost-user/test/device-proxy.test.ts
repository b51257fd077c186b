// VhostUserDeviceProxy: a VMM-side virtio device whose queues a back-end serves.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventFd } from '@rxvmm/eventfd';
import { featureBit, VirtioFeature } from '@rxvmm/virtio';
import { PackedDriver, SplitDriver } from '@rxvmm/virtio-ring';
import { EchoDevice } from '@rxvmm/virtio-ring/testing';
import { firstValueFrom } from 'rxjs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { identityMappedRegions, type ProxyActivation, VhostUserDeviceProxy } from '../src/index.js';
import { countFds, MemfdRam } from '../src/testing/index.js';
import { type Rig, startServer } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'rxvmm-vu-proxy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const enc = new TextEncoder();
const dec = new TextDecoder();

let n = 0;
let rig: Rig;
let ram: MemfdRam;
let proxy: VhostUserDeviceProxy | undefined;
const closers: (() => void)[] = [];

afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
  for (const c of closers.splice(0)) c();
  ram?.close();
  await rig?.server.close();
});

/** A transport's view of one queue at DRIVER_OK, plus the guest driver over it. */
function queueAt(index: number, base: bigint, size = 8) {
  const layout = { size, descTable: base, driverArea: base + 0x1000n, deviceArea: base + 0x2000n };
  const ringFeatures = { maxSize: size, packed: false, eventIdx: false, indirect: false };
  return {
    layout: { index, ready: true, ...ringFeatures, ...layout },
    driver: new SplitDriver(ram.memory, layout),
  };
}

function activation(features: bigint, queues: ProxyActivation['queues']) {
  const used: number[] = [];
  let resetReason: unknown;
  const waiters: (() => void)[] = [];
  const act: ProxyActivation = {
    features,
    queues,
    signalUsedBuffer: (i) => {
      used.push(i);
      waiters.shift()?.();
    },
    needsReset: (reason) => {
      resetReason = reason;
    },
  };
  return {
    act,
    used,
    reset: () => resetReason,
    nextInterrupt: () => new Promise<void>((r) => waiters.push(r)),
  };
}

async function request(driver: SplitDriver, text: string, at: bigint): Promise<void> {
  const bytes = enc.encode(text);
  ram.memory.write(at, bytes);
  driver.add([{ addr: at, len: bytes.length }], [{ addr: at + 0x800n, len: 64 }]);
}

function reply(driver: SplitDriver, at: bigint): string {
  const u = driver.getUsed();
  expect(u).not.toBeNull();
  const out = new Uint8Array(u?.len ?? 0);
  ram.memory.read(at + 0x800n, out);
  return dec.decode(out);
}

describe('VhostUserDeviceProxy', () => {
  it('exposes the back-end features (without the vhost-user bit) and config space', async () => {
    rig = startServer(join(dir, `p${n++}`));
    ram = new MemfdRam(1 << 20);
    proxy = await VhostUserDeviceProxy.connect(rig.path, {
      deviceType: 2,
      memory: identityMappedRegions([{ guestPhysAddr: 0n, size: ram.size, fd: ram.fd, fdOffset: 0 }]),
      queueMaxSizes: [256, 256],
      configSize: 16,
    });
    expect(proxy.features).toBe(rig.device.features);
    const cfg = new Uint8Array(20);
    proxy.readConfig(12, cfg);
    expect([...cfg.subarray(0, 6)]).toEqual([13, 14, 15, 16, 0, 0]);
  });

  it('a packed queue (VIRTIO_F_RING_PACKED accepted by the driver) starts fresh: positions 0, wrap counters 1', async () => {
    rig = startServer(join(dir, `p${n++}`), new EchoDevice({ packed: true }));
    ram = new MemfdRam(1 << 20);
    proxy = await VhostUserDeviceProxy.connect(rig.path, {
      deviceType: 2,
      memory: identityMappedRegions([{ guestPhysAddr: 0n, size: ram.size, fd: ram.fd, fdOffset: 0 }]),
      queueMaxSizes: [256],
    });
    const packed = featureBit(VirtioFeature.RING_PACKED);
    expect(proxy.features & packed).toBe(packed);
    const layout = { size: 8, descTable: 0x10000n, driverArea: 0x11000n, deviceArea: 0x12000n, packed: true };
    const driver = new PackedDriver(ram.memory, layout);
    const a = activation(featureBit(VirtioFeature.VERSION_1) | packed, [
      { index: 0, ready: true, maxSize: 8, eventIdx: false, indirect: false, ...layout },
    ]);
    await proxy.activate(a.act);
    const bytes = enc.encode('packed via proxy');
    ram.memory.write(0x40000n, bytes);
    driver.add([{ addr: 0x40000n, len: bytes.length }], [{ addr: 0x40800n, len: 64 }]);
    const irq = a.nextInterrupt();
    proxy.queueNotify(0);
    await irq;
    const u = driver.getUsed();
    const out = new Uint8Array(u?.len ?? 0);
    ram.memory.read(0x40800n, out);
    expect(dec.decode(out)).toBe('PACKED VIA PROXY');
  });

  it('without VMM notifiers: queueNotify kicks, the call eventfd becomes signalUsedBuffer', async () => {
    rig = startServer(join(dir, `p${n++}`));
    ram = new MemfdRam(1 << 20);
    proxy = await VhostUserDeviceProxy.connect(rig.path, {
      deviceType: 2,
      memory: identityMappedRegions([{ guestPhysAddr: 0n, size: ram.size, fd: ram.fd, fdOffset: 0 }]),
      queueMaxSizes: [256, 256],
    });
    const q0 = queueAt(0, 0x10000n);
    const q1 = queueAt(1, 0x20000n);
    const a = activation(1n << 32n, [q0.layout, q1.layout]);
    await proxy.activate(a.act);
    await request(q1.driver, 'via proxy', 0x40000n);
    const irq = a.nextInterrupt();
    proxy.queueNotify(1); // the VMM's MMIO exit for QueueNotify
    await irq;
    expect(a.used).toEqual([1]);
    expect(reply(q1.driver, 0x40000n)).toBe('VIA PROXY');
  });

  it('with the ioeventfd / irqfd eventfds: the VMM is off the data path; reset stops the rings and a restart works', async () => {
    rig = startServer(join(dir, `p${n++}`));
    ram = new MemfdRam(1 << 20);
    const kick = new EventFd(); // stands for the ioeventfd's eventfd (KVM writes it on the guest's doorbell)
    const call = new EventFd(); // stands for the irqfd's eventfd (KVM injects the interrupt when it is written)
    closers.push(
      () => kick.close(),
      () => call.close(),
    );
    proxy = await VhostUserDeviceProxy.connect(rig.path, {
      deviceType: 2,
      memory: identityMappedRegions([{ guestPhysAddr: 0n, size: ram.size, fd: ram.fd, fdOffset: 0 }]),
      queueMaxSizes: [256],
      notifiers: [{ kickFd: kick.fd, callFd: call.fd }],
    });
    const q = queueAt(0, 0x10000n);
    const a = activation(1n << 32n, [q.layout]);
    await proxy.activate(a.act);
    await request(q.driver, 'direct', 0x40000n);
    const irq = firstValueFrom(call.signals$);
    kick.write(1n); // the guest's doorbell
    await irq;
    expect(a.used).toEqual([]); // the proxy never saw the interrupt
    expect(reply(q.driver, 0x40000n)).toBe('DIRECT');

    await proxy.reset(); // driver wrote 0 to Status: GET_VRING_BASE
    expect(rig.server.current?.stats.rings[0]?.chains).toBe(1);
    // The driver starts over with fresh rings elsewhere.
    const q2 = queueAt(0, 0x30000n);
    const b = activation(1n << 32n, [q2.layout]);
    await proxy.activate(b.act);
    await request(q2.driver, 'again', 0x50000n);
    const irq2 = firstValueFrom(call.signals$);
    kick.write(1n);
    await irq2;
    expect(reply(q2.driver, 0x50000n)).toBe('AGAIN');
  });

  it('a back-end that goes away puts the device in NEEDS_RESET; close releases every fd', async () => {
    const fds = countFds();
    rig = startServer(join(dir, `p${n++}`));
    ram = new MemfdRam(1 << 20);
    proxy = await VhostUserDeviceProxy.connect(rig.path, {
      deviceType: 2,
      memory: identityMappedRegions([{ guestPhysAddr: 0n, size: ram.size, fd: ram.fd, fdOffset: 0 }]),
      queueMaxSizes: [256],
    });
    const a = activation(1n << 32n, [queueAt(0, 0x10000n).layout]);
    await proxy.activate(a.act);
    await rig.server.close();
    await proxy.frontend.whenClosed;
    expect(String(a.reset())).toMatch(/back-end gone/);
    await proxy.close();
    proxy = undefined;
    ram.close();
    expect(countFds()).toBe(fds);
  });

  it('refuses a back-end with fewer queues than the device needs', async () => {
    rig = startServer(join(dir, `p${n++}`), new EchoDevice());
    ram = new MemfdRam(1 << 16);
    await expect(
      VhostUserDeviceProxy.connect(rig.path, {
        deviceType: 2,
        memory: identityMappedRegions([{ guestPhysAddr: 0n, size: ram.size, fd: ram.fd, fdOffset: 0 }]),
        queueMaxSizes: [256, 256],
      }),
    ).rejects.toThrow(/back-end has 1 queues, the device needs 2/);
  });
});
