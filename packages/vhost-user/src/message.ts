/**
 * The message parser and encoder: raw header + payload + fds in, a typed
 * message out. Everything a frontend sends is hostile until checked here:
 * version, reply bit, exact payload size per request, and the fd count.
 * A parse failure is a `VhostUserProtocolError` (the connection is then closed).
 */
import {
  CONFIG_HEADER_SIZE,
  FLAG_NEED_REPLY,
  FLAG_REPLY,
  FLAG_VERSION_MASK,
  HEADER_SIZE,
  INFLIGHT_SIZE,
  INFLIGHT_SIZE_PACKED,
  MAX_CONFIG_SIZE,
  MAX_MEM_REGIONS,
  MAX_PAYLOAD_SIZE,
  MEM_REGION_SIZE,
  MEM_TABLE_HEADER_SIZE,
  Request,
  requestName,
  VERSION,
  VRING_ADDR_SIZE,
  VRING_IDX_MASK,
  VRING_NOFD_MASK,
  VRING_STATE_SIZE,
} from './protocol.js';

/** A message header: request code, flags (version, reply, need-reply), payload size. */
export interface Header {
  request: number;
  flags: number;
  size: number;
}

/** One region of SET_MEM_TABLE, as the wire carries it (the fd travels separately). */
export interface MemoryRegionDesc {
  guestPhysAddr: bigint;
  memorySize: bigint;
  userspaceAddr: bigint;
  mmapOffset: bigint;
}

/** The SET_VRING_ADDR payload: the ring's areas as frontend virtual addresses. */
export interface VringAddr {
  index: number;
  flags: number;
  descUserAddr: bigint;
  usedUserAddr: bigint;
  availUserAddr: bigint;
  logGuestAddr: bigint;
}

/** A parsed front-end request. `fds` are owned by the receiver from here on. */
export type Message =
  | { kind: 'none'; request: number; needReply: boolean }
  | { kind: 'u64'; request: number; needReply: boolean; value: bigint }
  | { kind: 'vringState'; request: number; needReply: boolean; index: number; num: number }
  | { kind: 'vringAddr'; request: number; needReply: boolean; addr: VringAddr }
  | { kind: 'vringFd'; request: number; needReply: boolean; index: number; fd: number | null }
  | { kind: 'memTable'; request: number; needReply: boolean; regions: MemoryRegionDesc[]; fds: number[] }
  | {
      kind: 'inflight';
      request: number;
      needReply: boolean;
      inflight: InflightPayload;
      /** The region's fd (SET_INFLIGHT_FD), null for GET_INFLIGHT_FD. */
      fd: number | null;
    }
  | {
      kind: 'config';
      request: number;
      needReply: boolean;
      offset: number;
      flags: number;
      size: number;
      data: Uint8Array;
    };

/** GET/SET_INFLIGHT_FD's payload (VhostUserInflight); `size` is how it was encoded (24, or 20 unpadded). */
export interface InflightPayload {
  mmapSize: bigint;
  mmapOffset: bigint;
  numQueues: number;
  queueSize: number;
  size: number;
}

/** A framing or encoding violation: the stream can no longer be trusted. */
export class VhostUserProtocolError extends Error {
  readonly code = 'EPROTO';
  constructor(readonly reason: string) {
    super(`EPROTO: ${reason}`);
    this.name = 'VhostUserProtocolError';
  }
}

const fail = (reason: string): never => {
  throw new VhostUserProtocolError(reason);
};

/** Decodes and checks a 12-byte header (before the payload is read); replies when `expectReply`. */
export function parseHeader(bytes: Uint8Array, expectReply = false): Header {
  if (bytes.length !== HEADER_SIZE) fail(`header is ${bytes.length} bytes, not ${HEADER_SIZE}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = {
    request: view.getUint32(0, true),
    flags: view.getUint32(4, true),
    size: view.getUint32(8, true),
  };
  if ((header.flags & FLAG_VERSION_MASK) !== VERSION)
    fail(
      `${requestName(header.request)}: protocol version ${header.flags & FLAG_VERSION_MASK}, expected ${VERSION}`,
    );
  if (((header.flags & FLAG_REPLY) !== 0) !== expectReply)
    fail(
      `${requestName(header.request)}: reply flag ${expectReply ? 'missing on a reply' : 'set on a request'}`,
    );
  if (header.size > MAX_PAYLOAD_SIZE)
    fail(
      `${requestName(header.request)}: payload of ${header.size} bytes exceeds the ${MAX_PAYLOAD_SIZE}-byte limit`,
    );
  return header;
}

/** Payload shape of each request this back-end accepts (others are refused as unknown). */
type Shape = 'none' | 'u64' | 'vringState' | 'vringAddr' | 'vringFd' | 'memTable' | 'config' | 'inflight';
const shapes = new Map<number, Shape>([
  [Request.GET_FEATURES, 'none'],
  [Request.SET_FEATURES, 'u64'],
  [Request.SET_OWNER, 'none'],
  [Request.RESET_OWNER, 'none'],
  [Request.SET_MEM_TABLE, 'memTable'],
  [Request.SET_VRING_NUM, 'vringState'],
  [Request.SET_VRING_ADDR, 'vringAddr'],
  [Request.SET_VRING_BASE, 'vringState'],
  [Request.GET_VRING_BASE, 'vringState'],
  [Request.SET_VRING_KICK, 'vringFd'],
  [Request.SET_VRING_CALL, 'vringFd'],
  [Request.SET_VRING_ERR, 'vringFd'],
  [Request.GET_PROTOCOL_FEATURES, 'none'],
  [Request.SET_PROTOCOL_FEATURES, 'u64'],
  [Request.GET_QUEUE_NUM, 'none'],
  [Request.SET_VRING_ENABLE, 'vringState'],
  [Request.GET_CONFIG, 'config'],
  [Request.SET_CONFIG, 'config'],
  [Request.RESET_DEVICE, 'none'],
  [Request.GET_INFLIGHT_FD, 'inflight'],
  [Request.SET_INFLIGHT_FD, 'inflight'],
]);

/** Requests this parser understands. */
export function isKnownRequest(request: number): boolean {
  return shapes.has(request);
}

const u64 = (view: DataView, off: number): bigint => view.getBigUint64(off, true);

/**
 * Parses a complete message. Throws `VhostUserProtocolError` for an unknown
 * request, a wrong payload size or a wrong number of fds. On success the fds
 * move into the message; on failure the caller still owns (and closes) them.
 */
export function parseMessage(header: Header, payload: Uint8Array, fds: readonly number[]): Message {
  const name = requestName(header.request);
  const shape = shapes.get(header.request) ?? fail(`${name}: unknown or unsupported request`);
  if (payload.length !== header.size)
    fail(`${name}: payload is ${payload.length} bytes, header says ${header.size}`);
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const needReply = (header.flags & FLAG_NEED_REPLY) !== 0;
  const request = header.request;
  const exact = (n: number): void => {
    if (payload.length !== n) fail(`${name}: payload must be ${n} bytes, got ${payload.length}`);
  };
  const noFds = (): void => {
    if (fds.length !== 0) fail(`${name}: carries ${fds.length} fd(s), this request takes none`);
  };
  switch (shape) {
    case 'none':
      exact(0);
      noFds();
      return { kind: 'none', request, needReply };
    case 'u64':
      exact(8);
      noFds();
      return { kind: 'u64', request, needReply, value: u64(view, 0) };
    case 'vringState':
      exact(VRING_STATE_SIZE);
      noFds();
      return {
        kind: 'vringState',
        request,
        needReply,
        index: view.getUint32(0, true),
        num: view.getUint32(4, true),
      };
    case 'vringAddr':
      exact(VRING_ADDR_SIZE);
      noFds();
      return {
        kind: 'vringAddr',
        request,
        needReply,
        addr: {
          index: view.getUint32(0, true),
          flags: view.getUint32(4, true),
          descUserAddr: u64(view, 8),
          usedUserAddr: u64(view, 16),
          availUserAddr: u64(view, 24),
          logGuestAddr: u64(view, 32),
        },
      };
    case 'vringFd': {
      exact(8);
      const value = u64(view, 0);
      const noFd = (value & VRING_NOFD_MASK) !== 0n;
      if ((value & ~(VRING_IDX_MASK | VRING_NOFD_MASK)) !== 0n)
        fail(`${name}: reserved bits set in 0x${value.toString(16)}`);
      const want = noFd ? 0 : 1;
      if (fds.length !== want)
        fail(`${name}: carries ${fds.length} fd(s), expected ${want}${noFd ? ' (no-fd flag set)' : ''}`);
      return {
        kind: 'vringFd',
        request,
        needReply,
        index: Number(value & VRING_IDX_MASK),
        fd: noFd ? null : (fds[0] as number),
      };
    }
    case 'memTable': {
      if (payload.length < MEM_TABLE_HEADER_SIZE)
        fail(`${name}: payload of ${payload.length} bytes is shorter than its header`);
      const nregions = view.getUint32(0, true);
      if (nregions === 0 || nregions > MAX_MEM_REGIONS)
        fail(`${name}: ${nregions} regions (1..${MAX_MEM_REGIONS} allowed)`);
      exact(MEM_TABLE_HEADER_SIZE + nregions * MEM_REGION_SIZE);
      if (fds.length !== nregions)
        fail(`${name}: ${nregions} regions but ${fds.length} fd(s); exactly one per region`);
      const regions: MemoryRegionDesc[] = [];
      for (let i = 0; i < nregions; i++) {
        const off = MEM_TABLE_HEADER_SIZE + i * MEM_REGION_SIZE;
        regions.push({
          guestPhysAddr: u64(view, off),
          memorySize: u64(view, off + 8),
          userspaceAddr: u64(view, off + 16),
          mmapOffset: u64(view, off + 24),
        });
      }
      return { kind: 'memTable', request, needReply, regions, fds: [...fds] };
    }
    case 'inflight': {
      if (payload.length !== INFLIGHT_SIZE && payload.length !== INFLIGHT_SIZE_PACKED)
        fail(`${name}: payload must be ${INFLIGHT_SIZE} bytes, got ${payload.length}`);
      const want = request === Request.SET_INFLIGHT_FD ? 1 : 0;
      if (fds.length !== want) fail(`${name}: carries ${fds.length} fd(s), expected ${want}`);
      return {
        kind: 'inflight',
        request,
        needReply,
        inflight: {
          mmapSize: u64(view, 0),
          mmapOffset: u64(view, 8),
          numQueues: view.getUint16(16, true),
          queueSize: view.getUint16(18, true),
          size: payload.length,
        },
        fd: want === 1 ? (fds[0] as number) : null,
      };
    }
    case 'config': {
      noFds();
      if (payload.length < CONFIG_HEADER_SIZE)
        fail(`${name}: payload of ${payload.length} bytes is shorter than its header`);
      const offset = view.getUint32(0, true);
      const size = view.getUint32(4, true);
      const flags = view.getUint32(8, true);
      if (size > MAX_CONFIG_SIZE) fail(`${name}: config size ${size} exceeds ${MAX_CONFIG_SIZE}`);
      exact(CONFIG_HEADER_SIZE + size);
      return {
        kind: 'config',
        request,
        needReply,
        offset,
        flags,
        size,
        data: payload.slice(CONFIG_HEADER_SIZE),
      };
    }
  }
}

/** Encodes a header + payload (replies set FLAG_REPLY). */
export function encodeMessage(
  request: number,
  flags: number,
  payload: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, request, true);
  view.setUint32(4, flags, true);
  view.setUint32(8, payload.length, true);
  out.set(payload, HEADER_SIZE);
  return out;
}

/** A reply to `request` with the given payload. */
export function encodeReply(request: number, payload: Uint8Array): Uint8Array {
  return encodeMessage(request, VERSION | FLAG_REPLY, payload);
}

/** A u64 payload (features, GET_VRING_BASE replies, SET_VRING_KICK/CALL/ERR). */
export function encodeU64(value: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, value), true);
  return out;
}

/** A `vhost_vring_state` payload: queue index and a number (SET_VRING_NUM/BASE/ENABLE). */
export function encodeVringState(index: number, num: number): Uint8Array {
  const out = new Uint8Array(VRING_STATE_SIZE);
  const view = new DataView(out.buffer);
  view.setUint32(0, index, true);
  view.setUint32(4, num, true);
  return out;
}

/** A `vhost_vring_addr` payload. */
export function encodeVringAddr(addr: VringAddr): Uint8Array {
  const out = new Uint8Array(VRING_ADDR_SIZE);
  const view = new DataView(out.buffer);
  view.setUint32(0, addr.index, true);
  view.setUint32(4, addr.flags, true);
  view.setBigUint64(8, addr.descUserAddr, true);
  view.setBigUint64(16, addr.usedUserAddr, true);
  view.setBigUint64(24, addr.availUserAddr, true);
  view.setBigUint64(32, addr.logGuestAddr, true);
  return out;
}

/** A SET_MEM_TABLE payload (the fds are sent alongside, one per region). */
export function encodeMemTable(regions: readonly MemoryRegionDesc[]): Uint8Array {
  const out = new Uint8Array(MEM_TABLE_HEADER_SIZE + regions.length * MEM_REGION_SIZE);
  const view = new DataView(out.buffer);
  view.setUint32(0, regions.length, true);
  regions.forEach((r, i) => {
    const off = MEM_TABLE_HEADER_SIZE + i * MEM_REGION_SIZE;
    view.setBigUint64(off, r.guestPhysAddr, true);
    view.setBigUint64(off + 8, r.memorySize, true);
    view.setBigUint64(off + 16, r.userspaceAddr, true);
    view.setBigUint64(off + 24, r.mmapOffset, true);
  });
  return out;
}

/** A GET/SET_CONFIG payload: offset, size, flags, then the bytes. */
export function encodeConfig(offset: number, flags: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(CONFIG_HEADER_SIZE + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, offset, true);
  view.setUint32(4, data.length, true);
  view.setUint32(8, flags, true);
  out.set(data, CONFIG_HEADER_SIZE);
  return out;
}

/** Encodes a VhostUserInflight (24 bytes, or `size` 20 for a frontend that sent it unpadded). */
export function encodeInflight(d: Omit<InflightPayload, 'size'> & { size?: number }): Uint8Array {
  const out = new Uint8Array(d.size === INFLIGHT_SIZE_PACKED ? INFLIGHT_SIZE_PACKED : INFLIGHT_SIZE);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, d.mmapSize, true);
  view.setBigUint64(8, d.mmapOffset, true);
  view.setUint16(16, d.numQueues, true);
  view.setUint16(18, d.queueSize, true);
  return out;
}

/** Decodes a VhostUserInflight reply (GET_INFLIGHT_FD), checking its size. */
export function decodeInflight(payload: Uint8Array): InflightPayload {
  if (payload.length !== INFLIGHT_SIZE && payload.length !== INFLIGHT_SIZE_PACKED)
    fail(`inflight payload must be ${INFLIGHT_SIZE} bytes, got ${payload.length}`);
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  return {
    mmapSize: view.getBigUint64(0, true),
    mmapOffset: view.getBigUint64(8, true),
    numQueues: view.getUint16(16, true),
    queueSize: view.getUint16(18, true),
    size: payload.length,
  };
}

/** Decodes a reply payload as u64 (GET_FEATURES, REPLY_ACK, ...), checking its size. */
export function decodeU64(payload: Uint8Array): bigint {
  if (payload.length !== 8) fail(`reply payload must be 8 bytes, got ${payload.length}`);
  return new DataView(payload.buffer, payload.byteOffset, 8).getBigUint64(0, true);
}
