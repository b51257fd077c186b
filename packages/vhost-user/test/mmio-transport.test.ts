// The VMM recipe for `--vhost-user`: VhostUserDeviceProxy behind @rxvmm/virtio-mmio's real
// transport. The guest side programs the transport's registers; its QueueNotify write reaches
// the back-end, the back-end's completion comes back as the transport's interrupt.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceStatus as S } from '@rxvmm/virtio';
import { MmioRegister as R, VirtioMmioTransport } from '@rxvmm/virtio-mmio';
import { SplitDriver } from '@rxvmm/virtio-ring';
import { firstValueFrom } from 'rxjs';
import { afterAll, expect, it } from 'vitest';
import { identityMappedRegions, VhostUserDeviceProxy } from '../src/index.js';
import { MemfdRam } from '../src/testing/index.js';
import { startServer } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'rxvmm-vu-mmio-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('a guest driving virtio-mmio registers is served by the back-end through the proxy', async () => {
  const rig = startServer(join(dir, 's'));
  const ram = new MemfdRam(1 << 20);
  const proxy = await VhostUserDeviceProxy.connect(rig.path, {
    deviceType: 2,
    memory: identityMappedRegions([{ guestPhysAddr: 0n, size: ram.size, fd: ram.fd, fdOffset: 0 }]),
    queueMaxSizes: [64, 64],
    configSize: 16,
  });
  const transport = new VirtioMmioTransport(proxy, { isValidRange: (a, l) => ram.memory.isValidRange(a, l) });
  const w = (reg: number, v: number) => transport.write(reg, 4, v);
  expect(transport.read(R.DeviceID, 4)).toBe(2);
  expect(transport.read(0x100 + 4, 1)).toBe(5); // config byte 4 of the back-end's config space

  // The guest driver: features, one 16-entry queue, DRIVER_OK.
  w(R.Status, 0);
  w(R.Status, S.ACKNOWLEDGE | S.DRIVER);
  w(R.DriverFeaturesSel, 1);
  w(R.DriverFeatures, 1); // VIRTIO_F_VERSION_1
  w(R.Status, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  w(R.QueueSel, 0);
  w(R.QueueNum, 16);
  w(R.QueueDescLow, 0x10000);
  w(R.QueueDriverLow, 0x11000);
  w(R.QueueDeviceLow, 0x12000);
  w(R.QueueReady, 1);
  const activated = firstValueFrom(transport.activated$);
  w(R.Status, transport.read(R.Status, 4) | S.DRIVER_OK);
  await activated;
  const driver = new SplitDriver(ram.memory, {
    size: 16,
    descTable: 0x10000n,
    driverArea: 0x11000n,
    deviceArea: 0x12000n,
  });
  ram.memory.write(0x40000n, new TextEncoder().encode('through mmio'));
  driver.add([{ addr: 0x40000n, len: 12 }], [{ addr: 0x41000n, len: 32 }]);
  const interrupt = firstValueFrom(transport.interrupt$);
  // The proxy's activation runs asynchronously; an early QueueNotify is covered by its injected kick.
  w(R.QueueNotify, 0);
  await interrupt;
  expect(transport.read(R.InterruptStatus, 4) & 1).toBe(1);
  const used = driver.getUsed();
  const out = new Uint8Array(used?.len ?? 0);
  ram.memory.read(0x41000n, out);
  expect(new TextDecoder().decode(out)).toBe('THROUGH MMIO');

  expect(rig.server.current?.stats.rings[0]?.chains).toBe(1);

  // Driver reset (the proxy stops the ring on the back-end), then the VMM lets go: an orderly end.
  w(R.Status, 0);
  const ended = rig.nextEnd();
  await proxy.close();
  expect(await ended).toBeNull();
  await rig.server.close();
  ram.close();
});
