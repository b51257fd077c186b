// Inflight I/O tracking and packed rings through whole sessions: the TS frontend against the
// back-end, with a device whose requests complete when the test says (so, out of order). A crash is
// what SIGKILL leaves: guest RAM and the inflight region as they were at that moment. The test
// copies both at a chosen moment, lets the session end (its requests complete), puts the copies
// back and starts another back-end on them, as QEMU does after `reconnect`: the same region
// (SET_INFLIGHT_FD) and, split, the used index as the ring base.
import { closeSync, mkdtempSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { F_SEAL_SHRINK, getSeals } from '@rxvmm/sys';
import { featureBit, VirtioFeature } from '@rxvmm/virtio';
import {
  type ChainDevice,
  type DescriptorChain,
  type GuestMemory,
  readSegments,
  writeSegments,
} from '@rxvmm/virtio-ring';
import { firstValueFrom } from 'rxjs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  encodeInflight,
  type FrontendInflight,
  inflightQueueBytes,
  PACKED_RING_START,
  ProtocolFeature,
  Request,
  VhostUserFrontend,
  VhostUserServer,
} from '../src/index.js';
import { MemfdRam, TestPackedQueue, TestQueue } from '../src/testing/index.js';
import { RawFrontend } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'rxvmm-vu-inflight-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const enc = new TextEncoder();
const dec = new TextDecoder();
const V1 = featureBit(VirtioFeature.VERSION_1);
const PACKED = featureBit(VirtioFeature.RING_PACKED);

/** A device whose requests wait until the test completes them (upper-cased echo, like EchoDevice). */
class HeldDevice implements ChainDevice {
  readonly deviceType = 0xffff;
  readonly queueMaxSizes = [8];
  readonly configSize = 0;
  readonly features: bigint;
  /** Requests in flight, by their text. */
  readonly held = new Map<string, () => void>();
  /** Every request served, in order (a resubmitted one appears again). */
  readonly served: string[] = [];
  private waiters: (() => void)[] = [];
  constructor(packed = false) {
    this.features = V1 | (packed ? PACKED : 0n);
  }
  readConfig(_offset: number, data: Uint8Array): void {
    data.fill(0);
  }
  handleChain(chain: DescriptorChain, memory: GuestMemory): Promise<number> {
    const input = new Uint8Array(chain.readableLength);
    readSegments(memory, chain.readable, input);
    const text = dec.decode(input);
    this.served.push(text);
    for (const w of this.waiters.splice(0)) w();
    return new Promise((resolve) =>
      this.held.set(text, () => {
        this.held.delete(text);
        resolve(writeSegments(memory, chain.writable, enc.encode(text.toUpperCase())));
      }),
    );
  }
  complete(...texts: string[]): void {
    for (const t of texts) {
      const done = this.held.get(t);
      if (!done) throw new Error(`${t} is not in flight`);
      done();
    }
  }
  /** Resolves once `n` requests have been served in all. */
  async servedCount(n: number): Promise<void> {
    while (this.served.length < n) await new Promise<void>((r) => this.waiters.push(r));
  }
}

interface Rig {
  server: VhostUserServer;
  device: HeldDevice;
  logs: string[];
  path: string;
  ended: Promise<string | null>;
}

let counter = 0;
function startServer(device: HeldDevice, requireSealed = false): Rig {
  const path = join(dir, `s${counter++}`);
  const logs: string[] = [];
  let resolveEnded!: (r: string | null) => void;
  const ended = new Promise<string | null>((r) => {
    resolveEnded = r;
  });
  const server = new VhostUserServer(device, {
    socketPath: path,
    requireSealed,
    log: (l) => logs.push(l),
    onSessionEnd: (_s, reason) => resolveEnded(reason),
  });
  return { server, device, logs, path, ended };
}

/** The region's bytes through its fd (a memfd: pread/pwrite work). */
function readRegion(r: FrontendInflight): Uint8Array {
  const out = new Uint8Array(Number(r.mmapSize));
  readSync(r.fd, out, 0, out.length, Number(r.mmapOffset));
  return out;
}
function writeRegion(r: FrontendInflight, bytes: Uint8Array): void {
  writeSync(r.fd, bytes, 0, bytes.length, Number(r.mmapOffset));
}

type AnyQueue = TestQueue | TestPackedQueue;

/** Request `text` at a slot of its own: readable text at 0x40000 + 0x1000 k, reply 0x100 above. */
function submit(q: AnyQueue, k: number, text: string): void {
  const at = 0x40000n + 0x1000n * BigInt(k);
  const bytes = enc.encode(text);
  q.ram.memory.write(at, bytes);
  q.driver.add([{ addr: at, len: bytes.length }], [{ addr: at + 0x100n, len: 64 }]);
}

/** Used buffers the driver can see now (the driver throws on a buffer used twice). */
function reap(q: AnyQueue): number[] {
  const out: number[] = [];
  for (let u = q.driver.getUsed(); u; u = q.driver.getUsed()) out.push(u.id);
  return out;
}

describe('inflight I/O tracking, whole sessions', () => {
  let ram: MemfdRam | undefined;
  let queues: AnyQueue[] = [];
  let fronts: VhostUserFrontend[] = [];
  let rigs: Rig[] = [];
  afterEach(async () => {
    for (const fe of fronts) fe.close();
    for (const r of rigs) {
      for (const done of r.device.held.values()) done();
      await r.server.close();
    }
    for (const q of queues) q.close();
    ram?.close();
    ram = undefined;
    fronts = [];
    rigs = [];
    queues = [];
  });

  it('offers INFLIGHT_SHMFD; GET_INFLIGHT_FD answers a sealed memfd the size of the region; records follow the ring', async () => {
    const rig = startServer(new HeldDevice());
    rigs.push(rig);
    ram = new MemfdRam(1 << 20);
    const q = new TestQueue(ram, 8, 0x10000n);
    queues.push(q);
    const fe = VhostUserFrontend.connect(rig.path);
    fronts.push(fe);
    expect((await fe.getProtocolFeatures()) & (1n << ProtocolFeature.INFLIGHT_SHMFD)).not.toBe(0n);
    await fe.start({ wantFeatures: V1, memory: [ram.region], queues: [q.frontendQueue()], inflight: 'new' });
    const region = fe.inflight as FrontendInflight;
    expect(region.mmapSize).toBe(BigInt(inflightQueueBytes(8)));
    expect(region.mmapOffset).toBe(0n);
    expect(getSeals(region.fd) & F_SEAL_SHRINK).toBe(F_SEAL_SHRINK);
    submit(q, 0, 'one');
    submit(q, 1, 'two');
    q.kickIfNeeded();
    await rig.device.servedCount(2);
    let bytes = readRegion(region);
    let view = new DataView(bytes.buffer);
    expect(view.getUint16(8, true)).toBe(1); // version: the ring's first use initialized it
    const heads = [16 + 16 * 0, 16 + 16 * 2]; // the driver's heads 0 and 2 (each chain takes two descriptors)
    expect(heads.map((o) => bytes[o])).toEqual([1, 1]);
    const called = firstValueFrom(q.call.signals$);
    rig.device.complete('two');
    await called;
    bytes = readRegion(region);
    view = new DataView(bytes.buffer);
    expect(heads.map((o) => bytes[o])).toEqual([1, 0]);
    expect(view.getUint16(14, true)).toBe(1); // used_idx follows the ring
    expect(view.getUint16(12, true)).toBe(2); // last_batch_head
    rig.device.complete('one');
    close(region.fd);
  });

  for (const packed of [false, true]) {
    const kind = packed ? 'packed' : 'split';
    it(`${kind}: a back-end that dies with requests completed out of order: the next one serves the rest, popped ones first, without a kick`, async () => {
      ram = new MemfdRam(1 << 20);
      const q: AnyQueue = packed ? new TestPackedQueue(ram, 8, 0x10000n) : new TestQueue(ram, 8, 0x10000n);
      queues.push(q);
      const want = V1 | (packed ? PACKED : 0n);
      const first = startServer(new HeldDevice(packed));
      rigs.push(first);
      const fe1 = VhostUserFrontend.connect(first.path);
      fronts.push(fe1);
      await fe1.start({
        wantFeatures: want,
        memory: [ram.region],
        queues: [q.frontendQueue()],
        inflight: 'new',
      });
      const region = fe1.inflight as FrontendInflight;
      // Four requests (two ring slots each); C and A complete, B and D stay in flight.
      for (const [k, t] of ['A', 'B', 'C', 'D'].entries()) submit(q, k, t);
      q.kickIfNeeded();
      await first.device.servedCount(4);
      const twoUsed = firstValueFrom(q.call.signals$);
      first.device.complete('C', 'A');
      await twoUsed;
      const usedBefore = reap(q);
      expect(usedBefore).toHaveLength(2);
      // SIGKILL now: this is what it leaves behind.
      const ramAtCrash = ram.bytes.slice();
      const regionAtCrash = readRegion(region);
      // (This session still completes its requests as it ends; the copies make that undone.)
      fe1.close();
      first.device.complete('B', 'D');
      await first.ended;
      ram.bytes.set(ramAtCrash);
      writeRegion(region, regionAtCrash);

      const second = startServer(new HeldDevice(packed));
      rigs.push(second);
      const fe2 = VhostUserFrontend.connect(second.path);
      fronts.push(fe2);
      // QEMU's SET_VRING_BASE after a back-end crash: split, the used index; packed (7.2), the base it started with.
      const usedIdx = packed ? 0 : ram.memory.readU16((q as TestQueue).used + 2n);
      const base = packed ? PACKED_RING_START : usedIdx;
      await fe2.start({
        wantFeatures: want,
        memory: [ram.region],
        queues: [{ ...q.frontendQueue(), base }],
        inflight: region,
      });
      // No kick: the requests the guest waits for are served at once, in the order they were popped.
      await second.device.servedCount(2);
      expect(second.device.served).toEqual(['B', 'D']);
      expect(second.logs.join('\n')).toMatch(
        /queue 0: inflight record: 2 request\(s\) in flight served again/,
      );
      // New requests come after them.
      submit(q, 4, 'E');
      q.kickIfNeeded();
      await second.device.servedCount(3);
      expect(second.device.served).toEqual(['B', 'D', 'E']);
      const allUsed = firstValueFrom(q.call.signals$);
      second.device.complete('E', 'D', 'B');
      await allUsed;
      await new Promise((r) => setTimeout(r, 10));
      const usedAfter = reap(q);
      // Every request exactly once: the mock driver throws on a buffer used twice.
      expect(usedAfter).toHaveLength(3);
      for (const [k, t] of ['A', 'B', 'C', 'D', 'E'].entries()) {
        const reply = new Uint8Array(1);
        ram.memory.read(0x40100n + 0x1000n * BigInt(k), reply);
        expect(dec.decode(reply)).toBe(t);
      }
      if (packed) {
        // GET_VRING_BASE: both positions and wrap counters; 5 requests of 2 slots in a ring of 8 wrapped once.
        expect(await fe2.getVringBase(0)).toBe((2 | (0 << 15) | (2 << 16) | (0 << 31)) >>> 0);
      } else {
        expect(await fe2.getVringBase(0)).toBe(5);
      }
      close(region.fd);
    });
  }

  it('packed rings: SET/GET_VRING_BASE carry both positions and wrap counters; a restart resumes across the wrap', async () => {
    const rig = startServer(new HeldDevice(true));
    rigs.push(rig);
    ram = new MemfdRam(1 << 20);
    const q = new TestPackedQueue(ram, 8, 0x10000n);
    queues.push(q);
    const fe = VhostUserFrontend.connect(rig.path);
    fronts.push(fe);
    const acked = await fe.start({
      wantFeatures: V1 | PACKED,
      memory: [ram.region],
      queues: [q.frontendQueue()],
    });
    expect(acked & PACKED).toBe(PACKED);
    for (const [k, t] of ['p', 'q', 'r'].entries()) submit(q, k, t);
    q.kickIfNeeded();
    await rig.device.servedCount(3);
    const used = firstValueFrom(q.call.signals$);
    rig.device.complete('r', 'p', 'q');
    await used;
    expect(await fe.getVringBase(0)).toBe(0x8006_8006); // avail 6 wrap 1, used 6 wrap 1
    expect(reap(q)).toHaveLength(3);
    // The same ring restarted from that base: two more requests cross the end of the ring.
    await fe.setVringBase(0, 0x8006_8006);
    await fe.setVringKick(0, q.kick.fd);
    await fe.setVringCall(0, q.call.fd);
    submit(q, 3, 's');
    submit(q, 4, 't');
    q.kick.write(1n);
    await rig.device.servedCount(5);
    const more = firstValueFrom(q.call.signals$);
    rig.device.complete('t', 's');
    await more;
    await new Promise((r) => setTimeout(r, 10));
    expect(reap(q)).toHaveLength(2);
    expect(await fe.getVringBase(0)).toBe(0x0002_0002); // positions 2, both wrap counters 0
    // A base outside the ring is refused when the ring is built: the ring fails, its err fd is signalled.
    await fe.setVringBase(0, 0x8009_8000);
    await fe.setVringKick(0, q.kick.fd);
    submit(q, 5, 'u');
    q.kick.write(1n);
    await new Promise((r) => setTimeout(r, 20));
    expect(rig.logs.join('\n')).toMatch(/packed ring base 0x80098000: .* outside a ring of 8/);
  });

  it('refuses what it cannot honour: no negotiation, a short region, an unsealed one when sealed memory is required', async () => {
    const rig = startServer(new HeldDevice(), true);
    rigs.push(rig);
    // GET_INFLIGHT_FD without INFLIGHT_SHMFD negotiated: a request with a reply cannot be refused, the connection closes.
    const raw = new RawFrontend(rig.path);
    raw.send(
      Request.GET_INFLIGHT_FD,
      encodeInflight({ mmapSize: 0n, mmapOffset: 0n, numQueues: 1, queueSize: 8 }),
    );
    expect(await raw.next()).toBeNull();
    expect(await rig.ended).toMatch(/INFLIGHT_SHMFD was not negotiated/);

    const second = startServer(new HeldDevice(), true);
    rigs.push(second);
    const fe = VhostUserFrontend.connect(second.path);
    fronts.push(fe);
    await fe.setProtocolFeatures((1n << ProtocolFeature.REPLY_ACK) | (1n << ProtocolFeature.INFLIGHT_SHMFD));
    await expect(fe.getInflightFd(2, 8)).rejects.toThrow(/ENOTCONN|closed/); // 2 queues: the device has 1
    const third = startServer(new HeldDevice(), true);
    rigs.push(third);
    const fe3 = VhostUserFrontend.connect(third.path);
    fronts.push(fe3);
    await fe3.setProtocolFeatures((1n << ProtocolFeature.REPLY_ACK) | (1n << ProtocolFeature.INFLIGHT_SHMFD));
    const good = await fe3.getInflightFd(1, 8);
    await expect(fe3.setInflightFd({ ...good, mmapSize: good.mmapSize - 64n })).rejects.toThrow(/status 1/);
    await expect(fe3.setInflightFd({ ...good, queueSize: 64 })).rejects.toThrow(/status 1/);
    // Our own RAM memfd is not sealed: refused with requireSealed.
    const unsealed = new MemfdRam(1 << 16);
    await expect(
      fe3.setInflightFd({
        fd: unsealed.fd,
        mmapSize: BigInt(inflightQueueBytes(8)),
        mmapOffset: 0n,
        numQueues: 1,
        queueSize: 8,
      }),
    ).rejects.toThrow(/status 1/);
    unsealed.close();
    await fe3.setInflightFd(good); // the back-end's own region is sealed
    expect(third.logs.join('\n')).toMatch(/the inflight region: its fd is not sealed against shrinking/);
    expect(third.logs.join('\n')).toMatch(/inflight region of \d+ bytes; 1 queues of 8 entries need/);
    close(good.fd);
  });
});

function close(fd: number): void {
  closeSync(fd);
}
