// A hostile frontend, one abuse per test. Each must end in an error reply or
// a closed connection with a logged reason; the back-end then serves the next
// frontend, and no fd or mapping is left behind (/proc/self/fd, /proc/self/maps).
import { ftruncateSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventFd } from '@rxvmm/eventfd';
import { close, MFD_CLOEXEC, memfdCreate } from '@rxvmm/sys';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  decodeU64,
  encodeMemTable,
  encodeMessage,
  encodeU64,
  encodeVringAddr,
  encodeVringState,
  FLAG_REPLY,
  HEADER_SIZE,
  MAX_PAYLOAD_SIZE,
  type RawMessage,
  Request,
  VERSION,
} from '../src/index.js';
import { countFds, countMaps, MemfdRam } from '../src/testing/index.js';
import { EchoDevice } from '@rxvmm/virtio-ring/testing';
import { expectServes, RawFrontend, type Rig, startServer } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'rxvmm-vu-hostile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let rig: Rig;
let fdsBefore: number;
let mapsBefore: number;
let n = 0;
const cleanup: (() => void)[] = [];

beforeEach(() => {
  fdsBefore = countFds();
  mapsBefore = countMaps();
  rig = startServer(join(dir, `h${n++}`));
});

afterEach(async () => {
  for (const f of cleanup.splice(0)) f();
  await rig.server.close();
  // Every fd the back-end received was closed, every region it mapped unmapped.
  expect(countFds()).toBe(fdsBefore);
  expect(countMaps()).toBe(mapsBefore);
});

/** Expects the back-end to drop the connection and log a reason matching `pattern`; then it must still serve. */
async function expectClosed(fe: RawFrontend, pattern: RegExp): Promise<void> {
  const ended = rig.nextEnd();
  expect(await fe.next()).toBeNull();
  expect(await ended).toMatch(pattern);
  expect(rig.logs.join('\n')).toMatch(pattern);
  await expectServes(rig);
}

/** Negotiates REPLY_ACK so semantic errors come back as error replies. */
async function withAck(fe: RawFrontend): Promise<void> {
  fe.send(Request.GET_FEATURES);
  expect((await fe.next())?.header.request).toBe(Request.GET_FEATURES);
  fe.send(Request.SET_PROTOCOL_FEATURES, encodeU64(1n << 3n));
  fe.sendAck(Request.SET_OWNER);
  expect(ack(await fe.next())).toBe(0n);
}

async function expectErrorReply(fe: RawFrontend, request: number, logPattern: RegExp): Promise<void> {
  const reply = await fe.next();
  expect(reply?.header.request).toBe(request);
  expect(ack(reply)).not.toBe(0n);
  expect(rig.logs.join('\n')).toMatch(logPattern);
  // The connection is still usable after an error reply.
  fe.send(Request.GET_QUEUE_NUM);
  expect(ack(await fe.next())).toBe(2n);
  const ended = rig.nextEnd();
  fe.close();
  await ended;
  await expectServes(rig);
}

/** The u64 status (or value) of a reply; fails the test if there was none. */
const ack = (m: RawMessage | null): bigint => {
  expect(m).not.toBeNull();
  return decodeU64((m as RawMessage).payload);
};

const raw = () => {
  const fe = new RawFrontend(rig.path);
  cleanup.push(() => fe.close());
  return fe;
};

const memfd = (size: number): number => {
  const fd = memfdCreate('rxvmm-hostile', MFD_CLOEXEC);
  ftruncateSync(fd, size);
  cleanup.push(() => close(fd));
  return fd;
};

describe('malformed headers', () => {
  it('closes on a wrong protocol version', async () => {
    const fe = raw();
    fe.send(Request.GET_FEATURES, undefined, [], 0x2);
    await expectClosed(fe, /protocol version 2/);
  });

  it('closes on a request with the reply flag', async () => {
    const fe = raw();
    fe.send(Request.GET_FEATURES, undefined, [], VERSION | FLAG_REPLY);
    await expectClosed(fe, /reply flag set/);
  });

  it('closes on a size over the limit without reading the payload', async () => {
    const fe = raw();
    const header = encodeMessage(Request.SET_FEATURES, VERSION).subarray(0, HEADER_SIZE);
    new DataView(header.buffer).setUint32(8, MAX_PAYLOAD_SIZE + 1, true);
    fe.sendBytes(header);
    await expectClosed(fe, /exceeds the 4096-byte limit/);
  });

  it('closes on an unknown request', async () => {
    const fe = raw();
    fe.send(99);
    await expectClosed(fe, /UNKNOWN\(99\): unknown or unsupported request/);
  });

  it('closes on a request it does not support (SET_LOG_BASE)', async () => {
    const fe = raw();
    fe.send(Request.SET_LOG_BASE, new Uint8Array(16));
    await expectClosed(fe, /SET_LOG_BASE\(6\): unknown or unsupported/);
  });

  it('closes on a wrong payload size', async () => {
    const fe = raw();
    fe.send(Request.SET_FEATURES, new Uint8Array(4));
    await expectClosed(fe, /payload must be 8 bytes, got 4/);
  });
});

describe('wrong fd counts', () => {
  it('closes when a request that takes no fd carries one (and closes that fd)', async () => {
    const fe = raw();
    const efd = new EventFd();
    cleanup.push(() => efd.close());
    fe.send(Request.SET_FEATURES, encodeU64(1n << 32n), [efd.fd]);
    await expectClosed(fe, /SET_FEATURES\(2\): carries 1 fd\(s\), this request takes none/);
  });

  it('closes when SET_VRING_KICK carries two fds', async () => {
    const fe = raw();
    const a = new EventFd();
    const b = new EventFd();
    cleanup.push(
      () => a.close(),
      () => b.close(),
    );
    fe.send(Request.SET_VRING_KICK, encodeU64(0n), [a.fd, b.fd]);
    await expectClosed(fe, /carries 2 fd\(s\), expected 1/);
  });

  it('closes when SET_VRING_CALL has the no-fd flag but carries an fd', async () => {
    const fe = raw();
    const a = new EventFd();
    cleanup.push(() => a.close());
    fe.send(Request.SET_VRING_CALL, encodeU64(0x100n), [a.fd]);
    await expectClosed(fe, /expected 0 \(no-fd flag set\)/);
  });

  it('closes when SET_MEM_TABLE has fewer fds than regions', async () => {
    const fe = raw();
    const fd = memfd(0x10000);
    const table = encodeMemTable([
      { guestPhysAddr: 0n, memorySize: 0x1000n, userspaceAddr: 0x10000n, mmapOffset: 0n },
      { guestPhysAddr: 0x1000n, memorySize: 0x1000n, userspaceAddr: 0x20000n, mmapOffset: 0x1000n },
    ]);
    fe.send(Request.SET_MEM_TABLE, table, [fd]);
    await expectClosed(fe, /2 regions but 1 fd\(s\); exactly one per region/);
  });

  it('closes when a message carries more fds than any message may', async () => {
    const fe = raw();
    const efds = Array.from({ length: 9 }, () => new EventFd());
    cleanup.push(() => {
      for (const e of efds) e.close();
    });
    fe.send(
      Request.SET_MEM_TABLE,
      new Uint8Array(8 + 9 * 32),
      efds.map((e) => e.fd),
    );
    await expectClosed(fe, /too many fds/);
  });

  it('refuses a kick fd that is not an eventfd', async () => {
    const fe = raw();
    await withAck(fe);
    fe.sendAck(Request.SET_VRING_KICK, encodeU64(0n), [memfd(4096)]);
    await expectErrorReply(fe, Request.SET_VRING_KICK, /not an eventfd/);
  });
});

describe('memory tables', () => {
  it('answers overlapping regions (guest-physical) with an error reply', async () => {
    const fe = raw();
    await withAck(fe);
    const fd1 = memfd(0x2000);
    const fd2 = memfd(0x2000);
    const table = encodeMemTable([
      { guestPhysAddr: 0n, memorySize: 0x2000n, userspaceAddr: 0x100000n, mmapOffset: 0n },
      { guestPhysAddr: 0x1000n, memorySize: 0x1000n, userspaceAddr: 0x200000n, mmapOffset: 0n },
    ]);
    fe.sendAck(Request.SET_MEM_TABLE, table, [fd1, fd2]);
    await expectErrorReply(fe, Request.SET_MEM_TABLE, /regions 0 and 1 overlap in guest-physical space/);
  });

  it('answers overlapping regions (frontend addresses) with an error reply', async () => {
    const fe = raw();
    await withAck(fe);
    const table = encodeMemTable([
      { guestPhysAddr: 0n, memorySize: 0x2000n, userspaceAddr: 0x100000n, mmapOffset: 0n },
      { guestPhysAddr: 0x10000n, memorySize: 0x2000n, userspaceAddr: 0x101000n, mmapOffset: 0n },
    ]);
    fe.sendAck(Request.SET_MEM_TABLE, table, [memfd(0x2000), memfd(0x2000)]);
    await expectErrorReply(fe, Request.SET_MEM_TABLE, /overlap in frontend address space/);
  });

  it('answers a region whose fd cannot be mapped (an eventfd) with an error reply', async () => {
    const fe = raw();
    await withAck(fe);
    const efd = new EventFd();
    cleanup.push(() => efd.close());
    const table = encodeMemTable([
      { guestPhysAddr: 0n, memorySize: 0x1000n, userspaceAddr: 0x100000n, mmapOffset: 0n },
    ]);
    fe.sendAck(Request.SET_MEM_TABLE, table, [efd.fd]);
    await expectErrorReply(fe, Request.SET_MEM_TABLE, /SET_MEM_TABLE\(5\) refused: .*mmap/);
  });

  it('answers a region larger than its memfd with an error reply (no SIGBUS later)', async () => {
    const fe = raw();
    await withAck(fe);
    const table = encodeMemTable([
      { guestPhysAddr: 0n, memorySize: 0x10000n, userspaceAddr: 0x100000n, mmapOffset: 0n },
    ]);
    fe.sendAck(Request.SET_MEM_TABLE, table, [memfd(0x1000)]);
    await expectErrorReply(fe, Request.SET_MEM_TABLE, /ends past the end of its fd/);
  });

  it('closes on a region table without REPLY_ACK that cannot be honoured', async () => {
    const fe = raw();
    const table = encodeMemTable([
      { guestPhysAddr: 0n, memorySize: 0n, userspaceAddr: 0x100000n, mmapOffset: 0n },
    ]);
    fe.send(Request.SET_MEM_TABLE, table, [memfd(0x1000)]);
    await expectClosed(fe, /region 0 is empty/);
  });

  it('unmaps the previous table when a new one replaces it', async () => {
    const fe = raw();
    await withAck(fe);
    const ram1 = new MemfdRam(0x10000);
    const ram2 = new MemfdRam(0x10000);
    cleanup.push(
      () => ram1.close(),
      () => ram2.close(),
    );
    const maps = countMaps();
    fe.sendAck(Request.SET_MEM_TABLE, encodeMemTable([{ ...desc(ram1) }]), [ram1.fd]);
    expect(ack(await fe.next())).toBe(0n);
    expect(countMaps()).toBe(maps + 1);
    fe.sendAck(Request.SET_MEM_TABLE, encodeMemTable([{ ...desc(ram2) }]), [ram2.fd]);
    expect(ack(await fe.next())).toBe(0n);
    expect(countMaps()).toBe(maps + 1);
    const ended = rig.nextEnd();
    fe.close();
    await ended;
    expect(countMaps()).toBe(maps);
  });
});

const desc = (ram: MemfdRam) => ({
  guestPhysAddr: ram.guestPhysAddr,
  memorySize: BigInt(ram.size),
  userspaceAddr: ram.address,
  mmapOffset: 0n,
});

describe('rings', () => {
  it('answers ring addresses outside the memory table with an error reply', async () => {
    const fe = raw();
    await withAck(fe);
    const ram = new MemfdRam(0x10000);
    cleanup.push(() => ram.close());
    fe.sendAck(Request.SET_MEM_TABLE, encodeMemTable([desc(ram)]), [ram.fd]);
    expect(ack(await fe.next())).toBe(0n);
    fe.sendAck(Request.SET_VRING_NUM, encodeVringState(0, 8));
    expect(ack(await fe.next())).toBe(0n);
    const addr = encodeVringAddr({
      index: 0,
      flags: 0,
      descUserAddr: ram.address,
      availUserAddr: ram.address + 0x1000n,
      usedUserAddr: ram.address + 0x10000n - 8n, // straddles the end of the region
      logGuestAddr: 0n,
    });
    fe.sendAck(Request.SET_VRING_ADDR, addr);
    await expectErrorReply(fe, Request.SET_VRING_ADDR, /outside the memory table/);
  });

  it('answers ring addresses before any memory table with an error reply', async () => {
    const fe = raw();
    await withAck(fe);
    fe.sendAck(Request.SET_VRING_NUM, encodeVringState(0, 8));
    expect(ack(await fe.next())).toBe(0n);
    fe.sendAck(
      Request.SET_VRING_ADDR,
      encodeVringAddr({
        index: 0,
        flags: 0,
        descUserAddr: 0n,
        availUserAddr: 0x1000n,
        usedUserAddr: 0x2000n,
        logGuestAddr: 0n,
      }),
    );
    await expectErrorReply(fe, Request.SET_VRING_ADDR, /no memory table/);
  });

  it('answers a queue index out of range with an error reply', async () => {
    const fe = raw();
    await withAck(fe);
    fe.sendAck(Request.SET_VRING_NUM, encodeVringState(7, 8));
    await expectErrorReply(fe, Request.SET_VRING_NUM, /queue index 7 out of range \(device has 2\)/);
  });

  it('closes on GET_VRING_BASE for a queue out of range (it has no error reply)', async () => {
    const fe = raw();
    fe.send(Request.GET_VRING_BASE, encodeVringState(200, 0));
    await expectClosed(fe, /queue index 200 out of range/);
  });

  it('closes on a kick fd for a queue out of range, closing the fd', async () => {
    const fe = raw();
    const efd = new EventFd();
    cleanup.push(() => efd.close());
    fe.send(Request.SET_VRING_KICK, encodeU64(5n), [efd.fd]);
    await expectClosed(fe, /queue index 5 out of range/);
  });

  it('answers a ring size that is not a power of two with an error reply', async () => {
    const fe = raw();
    await withAck(fe);
    fe.sendAck(Request.SET_VRING_NUM, encodeVringState(0, 6));
    await expectErrorReply(fe, Request.SET_VRING_NUM, /split queue size 6 is not a power of two/);
  });

  it('answers features that were never offered with an error reply', async () => {
    const fe = raw();
    await withAck(fe);
    fe.sendAck(Request.SET_FEATURES, encodeU64(1n << 5n));
    await expectErrorReply(fe, Request.SET_FEATURES, /features 0x20 were not offered/);
  });
});

describe('hostile ring contents', () => {
  it('a descriptor pointing outside guest memory stops that ring, signals its err eventfd, and the back-end serves on', async () => {
    const { VhostUserFrontend } = await import('../src/index.js');
    const { TestQueue } = await import('../src/testing/index.js');
    const ram = new MemfdRam(1 << 20);
    const q = new TestQueue(ram, 8, 0x10000n);
    const err = new EventFd();
    cleanup.push(
      () => q.close(),
      () => ram.close(),
      () => err.close(),
    );
    const fe = VhostUserFrontend.connect(rig.path);
    await fe.start({ wantFeatures: 1n << 32n, memory: [ram.region], queues: [q.frontendQueue()] });
    await fe.setVringErr(0, err.fd);
    q.driver.add([{ addr: 0x7000_0000n, len: 16 }], [{ addr: 0x40000n, len: 1 }]);
    const failed = new Promise<bigint>((resolve) => {
      const sub = err.signals$.subscribe((v) => {
        sub.unsubscribe();
        resolve(v);
      });
    });
    q.kick.write(1n);
    expect(await failed).toBe(1n);
    expect(rig.logs.join('\n')).toMatch(/queue 0 stopped: EFAULT/);
    expect(rig.device.handled).toBe(0);
    // The session itself is fine: the frontend can stop the ring and leave.
    expect(await fe.getVringBase(0)).toBeGreaterThanOrEqual(0);
    const ended = rig.nextEnd();
    fe.close();
    await ended;
    await expectServes(rig);
  });
});

describe('device results', () => {
  it('an asynchronous used length that is not a u32 stops that ring (logged, err eventfd) instead of an unhandled rejection', async () => {
    await rig.server.close();
    const device = new EchoDevice({ delayMs: 5 });
    const handle = device.handleChain.bind(device);
    device.handleChain = (chain, memory) => Promise.resolve(handle(chain, memory)).then(() => -1);
    rig = startServer(join(dir, `h${n++}`), device);
    const { VhostUserFrontend } = await import('../src/index.js');
    const { TestQueue } = await import('../src/testing/index.js');
    const ram = new MemfdRam(1 << 20);
    const q = new TestQueue(ram, 8, 0x10000n);
    const err = new EventFd();
    cleanup.push(
      () => q.close(),
      () => ram.close(),
      () => err.close(),
    );
    const fe = VhostUserFrontend.connect(rig.path);
    await fe.start({ wantFeatures: 1n << 32n, memory: [ram.region], queues: [q.frontendQueue()] });
    await fe.setVringErr(0, err.fd);
    const failed = new Promise<bigint>((resolve) => {
      const sub = err.signals$.subscribe((v) => {
        sub.unsubscribe();
        resolve(v);
      });
    });
    q.driver.add([{ addr: 0x41000n, len: 2 }], [{ addr: 0x40000n, len: 8 }]);
    q.kick.write(1n);
    expect(await failed).toBe(1n);
    expect(rig.logs.join('\n')).toMatch(/queue 0 stopped: .*used length -1/);
    expect(await fe.getVringBase(0)).toBe(1);
    const ended = rig.nextEnd();
    fe.close();
    await ended;
    device.handleChain = handle; // a well-behaved device again for the probe
    await expectServes(rig);
  });
});

describe('hostile notifiers', () => {
  it('a call eventfd the frontend saturated neither blocks nor crashes the back-end', async () => {
    const { VhostUserFrontend } = await import('../src/index.js');
    const { TestQueue } = await import('../src/testing/index.js');
    const ram = new MemfdRam(1 << 20);
    const q = new TestQueue(ram, 8, 0x10000n);
    cleanup.push(
      () => q.close(),
      () => ram.close(),
    );
    // The counter at its maximum: one more write(1) is EAGAIN (or blocks, on a blocking write).
    q.call.write(0xffff_ffff_ffff_fffen);
    const fe = VhostUserFrontend.connect(rig.path);
    await fe.start({ wantFeatures: 1n << 32n, memory: [ram.region], queues: [q.frontendQueue()] });
    ram.memory.write(0x41000n, new TextEncoder().encode('hi'));
    q.driver.add([{ addr: 0x41000n, len: 2 }], [{ addr: 0x40000n, len: 8 }]);
    q.kick.write(1n);
    await new Promise((r) => setTimeout(r, 20));
    expect(rig.device.handled).toBe(1);
    // The interrupt is already pending (the counter is non-zero): nothing was lost.
    expect(q.call.read()).toBe(0xffff_ffff_ffff_fffen);
    expect(await fe.getVringBase(0)).toBe(1);
    const ended = rig.nextEnd();
    fe.close();
    await ended;
    await expectServes(rig);
  });
});

describe('vanishing frontends', () => {
  it('logs a frontend that disappears in the middle of a message', async () => {
    const fe = raw();
    const ended = rig.nextEnd();
    fe.sendBytes(encodeMessage(Request.SET_FEATURES, VERSION, encodeU64(1n)).subarray(0, HEADER_SIZE + 3));
    fe.close();
    expect(await ended).toMatch(/closed the connection in the middle of SET_FEATURES/);
    await expectServes(rig);
  });

  it('survives a frontend that disappears with a request in flight, and releases everything after it completes', async () => {
    await rig.server.close();
    rig = startServer(join(dir, `h${n++}`), new EchoDevice({ delayMs: 50 }));
    const { VhostUserFrontend } = await import('../src/index.js');
    const { TestQueue } = await import('../src/testing/index.js');
    const ram = new MemfdRam(1 << 20);
    const q = new TestQueue(ram, 8, 0x10000n);
    cleanup.push(
      () => q.close(),
      () => ram.close(),
    );
    const fe = VhostUserFrontend.connect(rig.path);
    await fe.start({ wantFeatures: 1n << 32n, memory: [ram.region], queues: [q.frontendQueue()] });
    ram.memory.write(0x41000n, new TextEncoder().encode('bye'));
    q.driver.add([{ addr: 0x41000n, len: 3 }], [{ addr: 0x40000n, len: 8 }]);
    q.kick.write(1n);
    await new Promise((r) => setTimeout(r, 10));
    expect(rig.device.handled).toBe(0);
    const ended = rig.nextEnd();
    fe.close();
    await ended;
    // The in-flight request completed before the mapping went away.
    expect(rig.device.handled).toBe(1);
    await expectServes(rig);
  });

  it('does not map a memory table whose SET_MEM_TABLE was still waiting for in-flight requests when the frontend left', async () => {
    await rig.server.close();
    rig = startServer(join(dir, `h${n++}`), new EchoDevice({ delayMs: 50 }));
    const { VhostUserFrontend } = await import('../src/index.js');
    const { TestQueue } = await import('../src/testing/index.js');
    const ram = new MemfdRam(1 << 20);
    const ram2 = new MemfdRam(1 << 20);
    const q = new TestQueue(ram, 8, 0x10000n);
    cleanup.push(
      () => q.close(),
      () => ram.close(),
      () => ram2.close(),
    );
    const fe = VhostUserFrontend.connect(rig.path);
    await fe.start({ wantFeatures: 1n << 32n, memory: [ram.region], queues: [q.frontendQueue()] });
    ram.memory.write(0x41000n, new TextEncoder().encode('bye'));
    q.driver.add([{ addr: 0x41000n, len: 3 }], [{ addr: 0x40000n, len: 8 }]);
    q.kick.write(1n);
    await new Promise((r) => setTimeout(r, 10));
    expect(rig.device.handled).toBe(0);
    // The new table waits for the request in flight; the frontend leaves meanwhile.
    void fe.setMemTable([ram2.region]).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 10));
    const ended = rig.nextEnd();
    fe.close();
    await ended;
    await new Promise((r) => setTimeout(r, 100));
    expect(rig.device.handled).toBe(1);
    // afterEach: no mapping of ram2 (nor its fd) is left in the back-end.
    await expectServes(rig);
  });
});
