import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encodeConfig,
  encodeMemTable,
  encodeMessage,
  encodeU64,
  encodeVringAddr,
  encodeVringState,
  isKnownRequest,
  parseHeader,
  parseMessage,
  VhostUserProtocolError,
} from './message.js';
import { FLAG_NEED_REPLY, HEADER_SIZE, MAX_PAYLOAD_SIZE, Request, VERSION } from './protocol.js';

const parse = (bytes: Uint8Array, fds: number[] = []) => {
  const header = parseHeader(bytes.subarray(0, HEADER_SIZE));
  return parseMessage(header, bytes.subarray(HEADER_SIZE), fds);
};

describe('parseHeader', () => {
  it('accepts version 1 with need-reply', () => {
    const h = parseHeader(encodeMessage(Request.SET_OWNER, VERSION | FLAG_NEED_REPLY));
    expect(h).toEqual({ request: Request.SET_OWNER, flags: VERSION | FLAG_NEED_REPLY, size: 0 });
  });

  it('rejects a short header, version 0 and oversize payloads', () => {
    expect(() => parseHeader(new Uint8Array(11))).toThrow(VhostUserProtocolError);
    expect(() => parseHeader(encodeMessage(1, 0))).toThrow(/protocol version 0/);
    const big = encodeMessage(1, VERSION);
    new DataView(big.buffer).setUint32(8, MAX_PAYLOAD_SIZE + 1, true);
    expect(() => parseHeader(big)).toThrow(/exceeds/);
  });
});

describe('parseMessage', () => {
  it('decodes each payload shape', () => {
    expect(parse(encodeMessage(Request.SET_FEATURES, VERSION, encodeU64(0x1_0000_0000n)))).toMatchObject({
      kind: 'u64',
      value: 0x1_0000_0000n,
    });
    expect(parse(encodeMessage(Request.SET_VRING_NUM, VERSION, encodeVringState(1, 256)))).toMatchObject({
      index: 1,
      num: 256,
    });
    const addr = {
      index: 0,
      flags: 0,
      descUserAddr: 1n,
      usedUserAddr: 2n,
      availUserAddr: 3n,
      logGuestAddr: 4n,
    };
    expect(parse(encodeMessage(Request.SET_VRING_ADDR, VERSION, encodeVringAddr(addr)))).toMatchObject({
      addr,
    });
    expect(parse(encodeMessage(Request.SET_VRING_KICK, VERSION, encodeU64(0x101n)))).toMatchObject({
      index: 1,
      fd: null,
    });
    expect(parse(encodeMessage(Request.SET_VRING_CALL, VERSION, encodeU64(3n)), [42])).toMatchObject({
      index: 3,
      fd: 42,
    });
    const region = { guestPhysAddr: 0n, memorySize: 4096n, userspaceAddr: 0x7f00n, mmapOffset: 0n };
    expect(parse(encodeMessage(Request.SET_MEM_TABLE, VERSION, encodeMemTable([region])), [7])).toMatchObject(
      {
        regions: [region],
        fds: [7],
      },
    );
    expect(
      parse(encodeMessage(Request.GET_CONFIG, VERSION, encodeConfig(0, 0, new Uint8Array(60)))),
    ).toMatchObject({
      kind: 'config',
      size: 60,
    });
  });

  it('rejects reserved bits in a vring fd message', () => {
    expect(() => parse(encodeMessage(Request.SET_VRING_KICK, VERSION, encodeU64(0x200n)), [3])).toThrow(
      /reserved bits/,
    );
  });

  it('rejects a config payload whose size field disagrees with its length', () => {
    const payload = encodeConfig(0, 0, new Uint8Array(8));
    new DataView(payload.buffer).setUint32(4, 12, true);
    expect(() => parse(encodeMessage(Request.GET_CONFIG, VERSION, payload))).toThrow(
      /payload must be 24 bytes, got 20/,
    );
  });
});

describe('fuzz: the parser never fails other than with VhostUserProtocolError', () => {
  const knownRequests = Object.values(Request);
  const header = fc.record({
    request: fc.oneof(fc.constantFrom(...knownRequests), fc.integer({ min: 0, max: 0xffffffff })),
    flags: fc.oneof(
      fc.constantFrom(VERSION, VERSION | FLAG_NEED_REPLY),
      fc.integer({ min: 0, max: 0xffffffff }),
    ),
  });

  it('random headers, payloads and fd counts', () => {
    fc.assert(
      fc.property(
        header,
        fc.uint8Array({ maxLength: 400 }),
        fc.integer({ min: 0, max: 10 }),
        (h, payload, nfds) => {
          const bytes = encodeMessage(h.request, h.flags, payload);
          const fds = Array.from({ length: nfds }, (_, i) => 100 + i);
          try {
            const m = parse(bytes, fds);
            // Whatever parsed is a known request with a version-1 header.
            expect(isKnownRequest(m.request)).toBe(true);
            expect(h.flags & 3).toBe(VERSION);
          } catch (error) {
            expect(error).toBeInstanceOf(VhostUserProtocolError);
          }
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('random bytes as a header', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: HEADER_SIZE, maxLength: HEADER_SIZE }), (bytes) => {
        try {
          const h = parseHeader(bytes);
          expect(h.size).toBeLessThanOrEqual(MAX_PAYLOAD_SIZE);
        } catch (error) {
          expect(error).toBeInstanceOf(VhostUserProtocolError);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('memory tables: valid encodings round-trip, truncations are refused', () => {
    const region = fc.record({
      guestPhysAddr: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      memorySize: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      userspaceAddr: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      mmapOffset: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    });
    fc.assert(
      fc.property(
        fc.array(region, { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 31 }),
        (regions, cut) => {
          const payload = encodeMemTable(regions);
          const fds = regions.map((_, i) => 10 + i);
          const m = parse(encodeMessage(Request.SET_MEM_TABLE, VERSION, payload), fds);
          expect(m).toMatchObject({ kind: 'memTable', regions, fds });
          const short = payload.subarray(0, payload.length - cut);
          expect(() => parse(encodeMessage(Request.SET_MEM_TABLE, VERSION, short), fds)).toThrow(
            VhostUserProtocolError,
          );
        },
      ),
      { numRuns: 1000 },
    );
  });
});
