/**
 * The virtio-mmio register file as plain, versioned, JSON-serialisable data
 * (`VirtioMmioTransport.state()` / `VirtioMmioTransport.fromState()`), and the
 * checks that make a state read from a file safe to load: anything the
 * register file could not have reached is one `EINVAL` error, before any
 * transport exists. 64-bit values are decimal strings.
 */
import { errnoError } from '@rxvmm/errno';
import type { VirtioDevice } from '@rxvmm/virtio';

/** The `version` this code writes and the only one it reads. */
export const TRANSPORT_STATE_VERSION = 1;

/** One queue's registers (QueueNum, QueueReady, the three area addresses). */
export interface QueueRegistersState {
  size: number;
  ready: boolean;
  descTable: string;
  driverArea: string;
  deviceArea: string;
}

/** The register file as plain data (`transport.state()`, `VirtioMmioTransport.fromState`). */
export interface VirtioMmioTransportState {
  version: typeof TRANSPORT_STATE_VERSION;
  /** What the device offered: a restore onto another device is refused. */
  deviceType: number;
  offeredFeatures: string;
  queueMaxSizes: number[];
  status: number;
  deviceFeaturesSel: number;
  driverFeaturesSel: number;
  driverFeatures: string;
  queueSel: number;
  shmSel: number;
  interruptStatus: number;
  configGeneration: number;
  queues: QueueRegistersState[];
  /** DRIVER_OK was accepted and the device activated (until the next reset). */
  activated: boolean;
}

/** A state as the transport holds it (bigints). */
export interface LoadedTransportState {
  status: number;
  deviceFeaturesSel: number;
  driverFeaturesSel: number;
  driverFeatures: bigint;
  queueSel: number;
  shmSel: number;
  interruptStatus: number;
  configGeneration: number;
  queues: { size: number; ready: boolean; descTable: bigint; driverArea: bigint; deviceArea: bigint }[];
  activated: boolean;
}

/**
 * Checks `state` field by field against `device` (the one the transport will
 * drive) and returns it as the transport holds it. The status-machine rules
 * that need the transport (feature negotiation, queue layouts) are checked by
 * `fromState` itself.
 */
export function loadTransportState(
  state: unknown,
  device: VirtioDevice,
  offered: bigint,
): LoadedTransportState {
  const s = object(state, 'state');
  if (s.version !== TRANSPORT_STATE_VERSION)
    throw bad(`version ${String(s.version)} (this code reads version ${TRANSPORT_STATE_VERSION})`);
  if (s.deviceType !== device.deviceType)
    throw bad(`saved for device type ${String(s.deviceType)}, this device is ${device.deviceType}`);
  if (s.offeredFeatures !== offered.toString())
    throw bad(`saved with offered features ${String(s.offeredFeatures)}, this device offers ${offered}`);
  const maxSizes = s.queueMaxSizes;
  if (
    !Array.isArray(maxSizes) ||
    maxSizes.length !== device.queueMaxSizes.length ||
    maxSizes.some((m, i) => m !== device.queueMaxSizes[i])
  )
    throw bad('saved with other queue maximum sizes than this device has');
  if (!Array.isArray(s.queues) || s.queues.length !== device.queueMaxSizes.length)
    throw bad(`queues must list the device's ${device.queueMaxSizes.length} queue(s)`);
  return {
    status: int(s.status, 'status', 0xff),
    deviceFeaturesSel: int(s.deviceFeaturesSel, 'deviceFeaturesSel', 0xffff_ffff),
    driverFeaturesSel: int(s.driverFeaturesSel, 'driverFeaturesSel', 0xffff_ffff),
    driverFeatures: u64(s.driverFeatures, 'driverFeatures'),
    queueSel: int(s.queueSel, 'queueSel', 0xffff_ffff),
    shmSel: int(s.shmSel, 'shmSel', 0xffff_ffff),
    interruptStatus: int(s.interruptStatus, 'interruptStatus', 3),
    configGeneration: int(s.configGeneration, 'configGeneration', 0xffff_ffff),
    queues: (s.queues as unknown[]).map((value, i) => {
      const q = object(value, `queues[${i}]`);
      if (typeof q.ready !== 'boolean') throw bad(`queues[${i}].ready is not a boolean`);
      return {
        size: int(q.size, `queues[${i}].size`, 0xffff_ffff),
        ready: q.ready,
        descTable: u64(q.descTable, `queues[${i}].descTable`),
        driverArea: u64(q.driverArea, `queues[${i}].driverArea`),
        deviceArea: u64(q.deviceArea, `queues[${i}].deviceArea`),
      };
    }),
    activated: (() => {
      if (typeof s.activated !== 'boolean') throw bad('activated is not a boolean');
      return s.activated;
    })(),
  };
}

function object(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw bad(`${what} is not an object`);
  return value as Record<string, unknown>;
}

function int(value: unknown, what: string, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max)
    throw bad(`${what} = ${JSON.stringify(value)} is not an integer in [0, ${max}]`);
  return value;
}

function u64(value: unknown, what: string): bigint {
  if (typeof value !== 'string' || !/^(0|[1-9][0-9]{0,19})$/.test(value) || BigInt(value) >= 1n << 64n)
    throw bad(`${what} = ${JSON.stringify(value)} is not a u64 decimal string`);
  return BigInt(value);
}

export function bad(why: string): Error {
  return errnoError('EINVAL', `bad virtio-mmio transport state: ${why}`);
}
