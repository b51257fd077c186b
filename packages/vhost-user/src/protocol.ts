/**
 * Numbers of the vhost-user protocol (QEMU docs/interop/vhost-user.rst).
 * Only what this package speaks is listed; anything else is an unknown request.
 */

/** Front-end → back-end request codes. */
export const Request = {
  GET_FEATURES: 1,
  SET_FEATURES: 2,
  SET_OWNER: 3,
  RESET_OWNER: 4,
  SET_MEM_TABLE: 5,
  SET_LOG_BASE: 6,
  SET_LOG_FD: 7,
  SET_VRING_NUM: 8,
  SET_VRING_ADDR: 9,
  SET_VRING_BASE: 10,
  GET_VRING_BASE: 11,
  SET_VRING_KICK: 12,
  SET_VRING_CALL: 13,
  SET_VRING_ERR: 14,
  GET_PROTOCOL_FEATURES: 15,
  SET_PROTOCOL_FEATURES: 16,
  GET_QUEUE_NUM: 17,
  SET_VRING_ENABLE: 18,
  SEND_RARP: 19,
  NET_SET_MTU: 20,
  SET_BACKEND_REQ_FD: 21,
  IOTLB_MSG: 22,
  SET_VRING_ENDIAN: 23,
  GET_CONFIG: 24,
  SET_CONFIG: 25,
  GET_INFLIGHT_FD: 31,
  SET_INFLIGHT_FD: 32,
  RESET_DEVICE: 34,
  VRING_KICK: 35,
  GET_MAX_MEM_SLOTS: 36,
  ADD_MEM_REG: 37,
  REM_MEM_REG: 38,
  SET_STATUS: 39,
  GET_STATUS: 40,
} as const;
/** One of the `Request` codes. */
export type RequestCode = (typeof Request)[keyof typeof Request];

const names = new Map<number, string>(Object.entries(Request).map(([k, v]) => [v, k]));
/** `SET_MEM_TABLE(5)` style name for logs; `UNKNOWN(n)` for anything else. */
export function requestName(code: number): string {
  const name = names.get(code);
  return name === undefined ? `UNKNOWN(${code})` : `${name}(${code})`;
}

/** Header: u32 request, u32 flags, u32 size; then `size` payload bytes. */
export const HEADER_SIZE = 12;
/** Header flag bits. */
export const FLAG_VERSION_MASK = 0x3;
/** The protocol version in every header (flags bits 0-1). */
export const VERSION = 0x1;
/** Header flag: this message is a reply. */
export const FLAG_REPLY = 0x4;
/** Header flag: the sender wants a reply (with REPLY_ACK negotiated). */
export const FLAG_NEED_REPLY = 0x8;

/**
 * Largest payload accepted. The biggest message this back-end understands is
 * GET/SET_CONFIG (12 + 256 bytes); SET_MEM_TABLE with 8 regions is 264 bytes.
 * Anything larger is refused before a single payload byte is read.
 */
export const MAX_PAYLOAD_SIZE = 4096;
/** Memory regions (and so fds) per SET_MEM_TABLE without CONFIGURE_MEM_SLOTS. */
export const MAX_MEM_REGIONS = 8;
/** Most fds any message may carry. */
export const MAX_FDS = MAX_MEM_REGIONS;
/** Config space limit (VHOST_USER_MAX_CONFIG_SIZE). */
export const MAX_CONFIG_SIZE = 256;

/** Payload layouts. */
export const MEM_REGION_SIZE = 32; // u64 gpa, u64 size, u64 user addr, u64 mmap offset
/** SET_MEM_TABLE payload header: u32 region count, u32 padding. */
export const MEM_TABLE_HEADER_SIZE = 8; // u32 nregions, u32 padding
/** `vhost_vring_state` payload: u32 index, u32 num. */
export const VRING_STATE_SIZE = 8; // u32 index, u32 num
/** `vhost_vring_addr` payload: u32 index, u32 flags, u64 desc, used, avail and log addresses. */
export const VRING_ADDR_SIZE = 40; // u32 index, u32 flags, u64 desc, u64 used, u64 avail, u64 log
/** GET/SET_CONFIG payload header: u32 offset, u32 size, u32 flags. */
export const CONFIG_HEADER_SIZE = 12; // u32 offset, u32 size, u32 flags
/** VhostUserInflight: u64 mmap size, u64 mmap offset, u16 num queues, u16 queue size, padded to 24 (QEMU's size; 20 unpadded is accepted too). */
export const INFLIGHT_SIZE = 24;
/** `VhostUserInflight` without its trailing padding (accepted too). */
export const INFLIGHT_SIZE_PACKED = 20;

/** SET_VRING_KICK/CALL/ERR payload: bits 0-7 queue index, bit 8 "no fd". */
export const VRING_IDX_MASK = 0xffn;
/** SET_VRING_KICK/CALL/ERR payload bit: no fd comes with the message. */
export const VRING_NOFD_MASK = 0x100n;

/**
 * Virtio feature bit reserved by vhost-user: protocol features are negotiable.
 * (The virtio feature bits themselves are `@rxvmm/virtio`'s `VirtioFeature`.)
 */
export const VHOST_USER_F_PROTOCOL_FEATURES = 30n;

/** Protocol feature bits (GET/SET_PROTOCOL_FEATURES). */
export const ProtocolFeature = {
  MQ: 0n,
  LOG_SHMFD: 1n,
  RARP: 2n,
  REPLY_ACK: 3n,
  MTU: 4n,
  BACKEND_REQ: 5n,
  CROSS_ENDIAN: 6n,
  CRYPTO_SESSION: 7n,
  PAGEFAULT: 8n,
  CONFIG: 9n,
  BACKEND_SEND_FD: 10n,
  HOST_NOTIFIER: 11n,
  INFLIGHT_SHMFD: 12n,
  RESET_DEVICE: 13n,
  INBAND_NOTIFICATIONS: 14n,
  CONFIGURE_MEM_SLOTS: 15n,
  STATUS: 16n,
} as const;

/** `1n << bit`. */
export const bit = (n: bigint): bigint => 1n << n;
