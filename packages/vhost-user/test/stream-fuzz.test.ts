// Fuzz of the live back-end: sequences of messages (valid, mutated or random
// bytes, with random fds attached) go to a running server. Whatever happens,
// the process survives, the server serves a well-behaved frontend afterwards,
// and no fd or shared mapping is left behind.
import { ftruncateSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventFd } from '@rxvmm/eventfd';
import { close, MFD_CLOEXEC, memfdCreate } from '@rxvmm/sys';
import fc from 'fast-check';
import { afterAll, expect, it } from 'vitest';
import {
  encodeMemTable,
  encodeMessage,
  encodeU64,
  encodeVringAddr,
  encodeVringState,
  FLAG_NEED_REPLY,
  Request,
  VERSION,
} from '../src/index.js';
import { countFds, countMaps } from '../src/testing/index.js';
import { expectServes, RawFrontend, startServer } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'rxvmm-vu-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type FdKind = 'eventfd' | 'memfd';
interface Step {
  bytes: Uint8Array;
  fds: FdKind[];
}

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const small = fc.integer({ min: 0, max: 300 });
const flags = fc.constantFrom(VERSION, VERSION | FLAG_NEED_REPLY);

/** Plausible requests with plausible-but-wrong values: reaches deep into the state machine. */
const plausible: fc.Arbitrary<Step> = fc.oneof(
  fc
    .record({ f: flags, v: u64 })
    .map(({ f, v }) => ({ bytes: encodeMessage(Request.SET_FEATURES, f, encodeU64(v)), fds: [] })),
  fc.record({ f: flags, v: fc.bigInt({ min: 0n, max: 0xffffn }) }).map(({ f, v }) => ({
    bytes: encodeMessage(Request.SET_PROTOCOL_FEATURES, f, encodeU64(v)),
    fds: [],
  })),
  fc
    .record({
      r: fc.constantFrom(
        Request.SET_VRING_NUM,
        Request.SET_VRING_BASE,
        Request.SET_VRING_ENABLE,
        Request.GET_VRING_BASE,
      ),
      f: flags,
      i: small,
      n: fc.integer({ min: 0, max: 70000 }),
    })
    .map(({ r, f, i, n }) => ({ bytes: encodeMessage(r, f, encodeVringState(i % 4, n)), fds: [] })),
  fc.record({ f: flags, i: small, d: u64, a: u64, u: u64 }).map(({ f, i, d, a, u }) => ({
    bytes: encodeMessage(
      Request.SET_VRING_ADDR,
      f,
      encodeVringAddr({
        index: i % 4,
        flags: 0,
        descUserAddr: d,
        availUserAddr: a,
        usedUserAddr: u,
        logGuestAddr: 0n,
      }),
    ),
    fds: [],
  })),
  fc
    .record({
      r: fc.constantFrom(Request.SET_VRING_KICK, Request.SET_VRING_CALL, Request.SET_VRING_ERR),
      f: flags,
      i: small,
      nofd: fc.boolean(),
      kind: fc.constantFrom<FdKind>('eventfd', 'memfd'),
    })
    .map(({ r, f, i, nofd, kind }) => ({
      bytes: encodeMessage(r, f, encodeU64(BigInt(i % 4) | (nofd ? 0x100n : 0n))),
      fds: nofd ? [] : [kind],
    })),
  fc
    .record({
      f: flags,
      regions: fc.array(
        fc.record({
          g: fc.bigInt({ min: 0n, max: 1n << 20n }),
          s: fc.bigInt({ min: 0n, max: 1n << 17n }),
          u: u64,
          o: fc.bigInt({ min: 0n, max: 1n << 16n }),
        }),
        { minLength: 1, maxLength: 3 },
      ),
    })
    .map(({ f, regions }) => ({
      bytes: encodeMessage(
        Request.SET_MEM_TABLE,
        f,
        encodeMemTable(
          regions.map((r) => ({ guestPhysAddr: r.g, memorySize: r.s, userspaceAddr: r.u, mmapOffset: r.o })),
        ),
      ),
      fds: regions.map(() => 'memfd' as const),
    })),
  fc
    .constantFrom(
      Request.GET_FEATURES,
      Request.GET_PROTOCOL_FEATURES,
      Request.GET_QUEUE_NUM,
      Request.SET_OWNER,
      Request.RESET_OWNER,
    )
    .map((r) => ({ bytes: encodeMessage(r, VERSION), fds: [] })),
);

/** Random bytes and random fds: reaches the framing layer. */
const garbage: fc.Arbitrary<Step> = fc.record({
  bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }),
  fds: fc.array(fc.constantFrom<FdKind>('eventfd', 'memfd'), { maxLength: 3 }),
});

it('a running back-end survives random message sequences and keeps serving', async () => {
  const fdsBefore = countFds();
  const mapsBefore = countMaps();
  const rig = startServer(join(dir, 's'));
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.tuple(
          fc.oneof({ weight: 4, arbitrary: plausible }, { weight: 1, arbitrary: garbage }),
          fc.boolean(),
        ),
        { minLength: 1, maxLength: 12 },
      ),
      async (steps) => {
        const fe = new RawFrontend(rig.path);
        const opened: (() => void)[] = [];
        const make = (kind: FdKind): number => {
          if (kind === 'eventfd') {
            const e = new EventFd();
            opened.push(() => e.close());
            return e.fd;
          }
          const fd = memfdCreate('rxvmm-fuzz', MFD_CLOEXEC);
          ftruncateSync(fd, 1 << 16);
          opened.push(() => close(fd));
          return fd;
        };
        for (const [step, pause] of steps) {
          if (fe.closedReason !== undefined) break;
          fe.channel.send(step.bytes, step.fds.map(make));
          // Sometimes let the back-end run between messages, so replies and closes interleave.
          if (pause) await new Promise((r) => setImmediate(r));
        }
        // Our copies of the fds can go at once: the back-end holds its own.
        for (const f of opened) f();
        const ended = rig.nextEnd();
        fe.close();
        await ended;
      },
    ),
    { numRuns: 60 },
  );
  expect(countMaps()).toBe(mapsBefore);
  await expectServes(rig);
  await rig.server.close();
  expect(countFds()).toBe(fdsBefore);
});
