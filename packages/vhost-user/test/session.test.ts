import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstValueFrom } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { identityMappedRegions, VhostUserFrontend, VhostUserServer } from '../src/index.js';
import { countFds, countMapsNamed, MemfdRam, TestQueue } from '../src/testing/index.js';
import { EchoDevice } from '@rxvmm/virtio-ring/testing';

const dir = mkdtempSync(join(tmpdir(), 'rxvmm-vu-session-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Rig {
  server: VhostUserServer;
  device: EchoDevice;
  logs: string[];
  path: string;
  ended: Promise<string | null>;
}

let counter = 0;
function startServer(device = new EchoDevice({ queues: 2 })): Rig {
  const path = join(dir, `s${counter++}`);
  const logs: string[] = [];
  let resolveEnded!: (r: string | null) => void;
  const rig: Rig = {
    device,
    logs,
    path,
    ended: new Promise((r) => {
      resolveEnded = r;
    }),
    server: new VhostUserServer(device, {
      socketPath: path,
      log: (l) => logs.push(l),
      onSessionEnd: (_stats, reason) => resolveEnded(reason),
    }),
  };
  return rig;
}

/** Adds one request "text" to the queue, kicks, waits for the call eventfd and returns the reply. */
async function roundTrip(q: TestQueue, text: string, replyAt: bigint, requestAt: bigint): Promise<string> {
  const bytes = enc.encode(text);
  q.ram.memory.write(requestAt, bytes);
  q.driver.add([{ addr: requestAt, len: bytes.length }], [{ addr: replyAt, len: 64 }]);
  const called = firstValueFrom(q.call.signals$);
  q.kickIfNeeded();
  await called;
  const used = q.driver.getUsed();
  q.driver.enableInterrupts(); // re-arm: with EVENT_IDX this moves used_event past what we consumed
  expect(used).not.toBeNull();
  const out = new Uint8Array(used?.len ?? 0);
  q.ram.memory.read(replyAt, out);
  return dec.decode(out);
}

describe('a full session driven by the TS frontend', () => {
  let rig: Rig;
  let ram: MemfdRam;
  let queues: TestQueue[];
  let fe: VhostUserFrontend | null = null;
  let fdsBefore = 0;

  beforeAll(() => {
    fdsBefore = countFds();
  });

  afterEach(async () => {
    fe?.close();
    fe = null;
    for (const q of queues ?? []) q.close();
    ram?.close();
    await rig?.server.close();
  });

  it('negotiates, maps a memfd, serves kicks on two queues and signals the call eventfd', async () => {
    rig = startServer();
    ram = new MemfdRam(1 << 20);
    queues = [new TestQueue(ram, 16, 0x10000n, true), new TestQueue(ram, 16, 0x20000n, true)];
    fe = VhostUserFrontend.connect(rig.path);
    const acked = await fe.start({
      wantFeatures: (1n << 32n) | (1n << 29n),
      memory: [ram.region],
      queues: queues.map((q) => q.frontendQueue()),
    });
    expect(acked & (1n << 29n)).toBe(1n << 29n);
    expect(await fe.getQueueNum()).toBe(2);
    expect(await fe.getConfig(0, 16)).toEqual(rig.device.config);
    await fe.setConfig(2, new Uint8Array([0xaa, 0xbb]));
    expect([...(await fe.getConfig(0, 5))]).toEqual([1, 2, 0xaa, 0xbb, 5]);
    // Asking past the device's config space reads zeros there.
    expect([...(await fe.getConfig(14, 4))]).toEqual([15, 16, 0, 0]);
    expect(await roundTrip(queues[0] as TestQueue, 'hello vhost', 0x40000n, 0x41000n)).toBe('HELLO VHOST');
    expect(await roundTrip(queues[1] as TestQueue, 'second queue', 0x42000n, 0x43000n)).toBe('SECOND QUEUE');
    expect(await roundTrip(queues[0] as TestQueue, 'again', 0x40000n, 0x41000n)).toBe('AGAIN');
    // The back-end maps the memfd a second time while the session runs.
    expect(countMapsNamed('rxvmm-test-ram')).toBeGreaterThanOrEqual(2);
    expect(await fe.getVringBase(0)).toBe(2);
    expect(await fe.getVringBase(1)).toBe(1);
    fe.close();
    fe = null;
    expect(await rig.ended).toBeNull();
    // Only our own mapping remains; the session's was released.
    expect(countMapsNamed('rxvmm-test-ram')).toBe(1);
  });

  it('signals the call eventfd only as EVENT_IDX allows (used_event)', async () => {
    rig = startServer();
    ram = new MemfdRam(1 << 20);
    const q = new TestQueue(ram, 16, 0x10000n, true);
    queues = [q];
    fe = VhostUserFrontend.connect(rig.path);
    await fe.start({
      wantFeatures: (1n << 32n) | (1n << 29n),
      memory: [ram.region],
      queues: [q.frontendQueue()],
    });
    expect(await roundTrip(q, 'first', 0x40000n, 0x41000n)).toBe('FIRST'); // re-arms: used_event = 1
    // The driver now leaves used_event where it is while it submits two more requests.
    const submit = (addr: bigint) => {
      ram.memory.write(addr, enc.encode('x'));
      q.driver.add([{ addr, len: 1 }], [{ addr: addr + 0x100n, len: 8 }]);
      q.kickIfNeeded();
    };
    const called = firstValueFrom(q.call.signals$);
    submit(0x42000n); // used idx 1 -> 2 crosses used_event 1: interrupt
    await called;
    const calls = () => rig.server.current?.stats.rings[0]?.calls ?? -1;
    const before = calls();
    submit(0x43000n); // used idx 2 -> 3 does not cross used_event 1: no interrupt
    while ((rig.device.handled as number) < 3) await new Promise((r) => setTimeout(r, 1));
    await fe.getQueueNum(); // a round trip: the completion's flush has run
    expect(calls()).toBe(before);
    expect(q.driver.getUsed()).not.toBeNull();
    expect(q.driver.getUsed()).not.toBeNull();
    // Both completions were delivered in the used ring all the same; nothing is left unconsumed.
    expect(q.driver.enableInterrupts()).toBe(false);
  });

  it('without VHOST_USER_F_PROTOCOL_FEATURES rings are enabled from SET_FEATURES on (no SET_VRING_ENABLE)', async () => {
    rig = startServer();
    ram = new MemfdRam(1 << 20);
    const q = new TestQueue(ram, 8, 0x10000n);
    queues = [q];
    fe = VhostUserFrontend.connect(rig.path);
    expect((await fe.getFeatures()) & (1n << 30n)).toBe(1n << 30n);
    await fe.setOwner();
    await fe.setFeatures(1n << 32n); // a legacy frontend: protocol features not acked
    await fe.setMemTable([ram.region]);
    await fe.setVringNum(0, 8);
    await fe.setVringBase(0, 0);
    await fe.setVringAddr(0, q.frontendQueue());
    await fe.setVringCall(0, q.call.fd);
    await fe.setVringKick(0, q.kick.fd);
    expect(await roundTrip(q, 'legacy', 0x40000n, 0x41000n)).toBe('LEGACY');
  });

  it('holds a kick that arrives before the ring is enabled and serves it on enable', async () => {
    rig = startServer();
    ram = new MemfdRam(1 << 20);
    const q = new TestQueue(ram, 8, 0x10000n);
    queues = [q];
    fe = VhostUserFrontend.connect(rig.path);
    const f = await fe.getFeatures();
    await fe.setProtocolFeatures((await fe.getProtocolFeatures()) & 0x8n); // REPLY_ACK
    await fe.setOwner();
    await fe.setFeatures(f & ((1n << 32n) | (1n << 30n)));
    await fe.setMemTable([ram.region]);
    await fe.setVringNum(0, 8);
    await fe.setVringBase(0, 0);
    await fe.setVringAddr(0, q.frontendQueue());
    await fe.setVringCall(0, q.call.fd);
    await fe.setVringKick(0, q.kick.fd);
    const text = enc.encode('early');
    ram.memory.write(0x41000n, text);
    q.driver.add([{ addr: 0x41000n, len: text.length }], [{ addr: 0x40000n, len: 16 }]);
    q.kick.write(1n);
    // A message round trip: the kick has surely been seen by now, and must not have been served.
    await fe.getQueueNum().catch(() => fe?.getFeatures());
    expect(rig.device.handled).toBe(0);
    const called = firstValueFrom(q.call.signals$);
    await fe.setVringEnable(0, true);
    await called;
    expect(rig.device.handled).toBe(1);
    expect(q.driver.getUsed()?.len).toBe(5);
  });

  it('GET_VRING_BASE waits for in-flight requests, stops the ring, and a restart resumes from the base', async () => {
    rig = startServer(new EchoDevice({ delayMs: 30 }));
    ram = new MemfdRam(1 << 20);
    const q = new TestQueue(ram, 8, 0x10000n);
    queues = [q];
    fe = VhostUserFrontend.connect(rig.path);
    await fe.start({ wantFeatures: 1n << 32n, memory: [ram.region], queues: [q.frontendQueue()] });
    const text = enc.encode('slow');
    ram.memory.write(0x41000n, text);
    q.driver.add([{ addr: 0x41000n, len: text.length }], [{ addr: 0x40000n, len: 16 }]);
    q.kick.write(1n);
    await new Promise((r) => setTimeout(r, 5));
    expect(rig.device.handled).toBe(0); // in flight
    expect(await fe.getVringBase(0)).toBe(1);
    expect(rig.device.handled).toBe(1); // drained before the reply
    expect(q.driver.getUsed()?.len).toBe(4);
    await firstValueFrom(q.call.signals$); // the completion's interrupt
    // Stopped: a new buffer plus a kick on the old fd is not processed.
    q.driver.add([{ addr: 0x41000n, len: text.length }], [{ addr: 0x40000n, len: 16 }]);
    q.kick.write(1n);
    await fe.getQueueNum().catch(() => undefined);
    expect(rig.device.handled).toBe(1);
    // Restart: new kick fd, base 1; the pending buffer is served once the new kick arrives.
    const kick2 = new (await import('@rxvmm/eventfd')).EventFd();
    await fe.setVringBase(0, 1);
    await fe.setVringCall(0, q.call.fd);
    await fe.setVringKick(0, kick2.fd);
    const called = firstValueFrom(q.call.signals$);
    kick2.write(1n);
    await called;
    expect(rig.device.handled).toBe(2);
    kick2.close();
  });

  it('a new memory table waits for requests in flight on the old one, then serves from the new one', async () => {
    rig = startServer(new EchoDevice({ delayMs: 30 }));
    ram = new MemfdRam(1 << 20);
    const q = new TestQueue(ram, 8, 0x10000n);
    queues = [q];
    fe = VhostUserFrontend.connect(rig.path);
    await fe.start({ wantFeatures: 1n << 32n, memory: [ram.region], queues: [q.frontendQueue()] });
    const text = enc.encode('inflight');
    ram.memory.write(0x41000n, text);
    q.driver.add([{ addr: 0x41000n, len: text.length }], [{ addr: 0x40000n, len: 16 }]);
    q.kick.write(1n);
    await new Promise((r) => setTimeout(r, 5));
    expect(rig.device.handled).toBe(0);
    const maps = countMapsNamed('rxvmm-test-ram');
    await fe.setMemTable([ram.region]); // same RAM, remapped: the in-flight request completes first
    expect(rig.device.handled).toBe(1);
    expect(countMapsNamed('rxvmm-test-ram')).toBe(maps);
    expect(q.driver.getUsed()?.len).toBe(8);
    q.driver.enableInterrupts();
    await firstValueFrom(q.call.signals$);
    expect(await roundTrip(q, 'after', 0x40000n, 0x41000n)).toBe('AFTER');
  });

  it('resets state on disconnect and serves the next frontend', async () => {
    rig = startServer();
    ram = new MemfdRam(1 << 20);
    const q = new TestQueue(ram, 8, 0x10000n);
    queues = [q];
    const fe1 = VhostUserFrontend.connect(rig.path);
    await fe1.start({ wantFeatures: 1n << 32n, memory: [ram.region], queues: [q.frontendQueue()] });
    expect(await roundTrip(q, 'one', 0x40000n, 0x41000n)).toBe('ONE');
    fe1.close();
    await rig.ended;
    expect(rig.device.resets).toBeGreaterThanOrEqual(1);
    const q2 = new TestQueue(ram, 8, 0x30000n);
    queues.push(q2);
    fe = VhostUserFrontend.connect(rig.path);
    await fe.start({ wantFeatures: 1n << 32n, memory: [ram.region], queues: [q2.frontendQueue()] });
    expect(await roundTrip(q2, 'two', 0x40000n, 0x41000n)).toBe('TWO');
  });

  it('works with identity-mapped regions (VMM regions without host addresses) at a non-zero base', async () => {
    rig = startServer();
    ram = new MemfdRam(1 << 20, 0x8000_0000n);
    const q = new TestQueue(ram, 8, 0x8001_0000n);
    queues = [q];
    fe = VhostUserFrontend.connect(rig.path);
    const regions = identityMappedRegions([
      { guestPhysAddr: ram.guestPhysAddr, size: ram.size, fd: ram.fd, fdOffset: 0 },
    ]);
    expect(regions[0]?.userspaceAddr).toBe(0x8000_0000n);
    await fe.start({
      wantFeatures: 1n << 32n,
      memory: regions,
      queues: [
        {
          size: 8,
          descUserAddr: q.desc,
          availUserAddr: q.avail,
          usedUserAddr: q.used,
          kickFd: q.kick.fd,
          callFd: q.call.fd,
        },
      ],
    });
    expect(await roundTrip(q, 'identity', 0x8004_0000n, 0x8004_1000n)).toBe('IDENTITY');
    expect(() => identityMappedRegions([{ guestPhysAddr: 0n, size: 4096, fd: -1, fdOffset: 0 }])).toThrow(
      /no fd/,
    );
  });

  it('frontend: a refusal rejects that call (REPLY_ACK), a vanished back-end rejects with ENOTCONN', async () => {
    rig = startServer(new EchoDevice({ delayMs: 50 }));
    ram = new MemfdRam(1 << 20);
    const q = new TestQueue(ram, 8, 0x10000n);
    queues = [q];
    fe = VhostUserFrontend.connect(rig.path);
    await fe.start({ wantFeatures: 1n << 32n, memory: [ram.region], queues: [q.frontendQueue()] });
    await expect(fe.setVringNum(0, 3)).rejects.toThrow(/back-end refused SET_VRING_NUM\(8\) \(status 1\)/);
    // The session survives a refused request.
    expect(await fe.getQueueNum()).toBe(1);
    // A request in flight keeps GET_VRING_BASE waiting; the back-end going away rejects it.
    ram.memory.write(0x41000n, enc.encode('x'));
    q.driver.add([{ addr: 0x41000n, len: 1 }], [{ addr: 0x40000n, len: 8 }]);
    q.kick.write(1n);
    await new Promise((r) => setTimeout(r, 5));
    const pending = fe.getVringBase(0);
    const closing = rig.server.close();
    await expect(pending).rejects.toMatchObject({ code: 'ENOTCONN' });
    await closing;
    await expect(fe.getFeatures()).rejects.toMatchObject({ code: 'ENOTCONN' });
    expect(fe.closed).toBe(true);
  });

  it('leaves no fd behind after all sessions', async () => {
    rig = startServer();
    ram = new MemfdRam(1 << 16);
    queues = [];
    await rig.server.close();
    ram.close();
    expect(countFds()).toBe(fdsBefore);
  });
});
