/**
 * @rxvmm/vhost-user: the vhost-user protocol (QEMU docs/interop/vhost-user.rst).
 * Back-end: `VhostUserServer` (listening socket, one frontend at a time) running
 * a `BackendSession` per frontend over any `ChainDevice` of `@rxvmm/virtio-ring`
 * (the same device a VMM hosts behind a transport with `DeviceServer`). Frontend:
 * `VhostUserFrontend` (what a VMM uses to hand its queues to a back-end).
 */

export type { BackendSessionOptions, Logger, SessionStats } from './backend.js';
export { BACKEND_PROTOCOL_FEATURES, BackendSession } from './backend.js';
export type { ChannelHandlers, RawMessage } from './channel.js';
export { MessageChannel } from './channel.js';
export { type DeviceProxyOptions, type ProxyActivation, VhostUserDeviceProxy } from './device-proxy.js';
export type { FrontendInflight, FrontendMemoryRegion, FrontendQueue } from './frontend.js';
export { identityMappedRegions, PACKED_RING_START, VhostUserFrontend } from './frontend.js';
export { INFLIGHT_VERSION, inflightQueueBytes } from './inflight-region.js';
export { type MappedMemoryRegion, MemoryTable } from './memory-table.js';
export type { Header, InflightPayload, MemoryRegionDesc, Message, VringAddr } from './message.js';
export {
  decodeInflight,
  decodeU64,
  encodeConfig,
  encodeInflight,
  encodeMemTable,
  encodeMessage,
  encodeReply,
  encodeU64,
  encodeVringAddr,
  encodeVringState,
  isKnownRequest,
  parseHeader,
  parseMessage,
  VhostUserProtocolError,
} from './message.js';
export * from './protocol.js';
export type { ServerOptions } from './server.js';
export { VhostUserServer } from './server.js';
export type { VringStats } from './vring.js';
