/** Drives a transport's registers the way Linux's virtio_mmio.c does (section 3.1.1). */
import { DeviceStatus as S } from '@rxvmm/virtio';
import { MmioRegister as R } from '../constants.js';
import type { VirtioMmioTransport } from '../transport.js';

export interface QueueSetup {
  index: number;
  size: number;
  desc: bigint;
  driver: bigint;
  device: bigint;
}

export function w(t: VirtioMmioTransport, reg: number, value: number): void {
  t.write(reg, 4, value);
}
export function r(t: VirtioMmioTransport, reg: number): number {
  return t.read(reg, 4);
}
export function deviceFeatures(t: VirtioMmioTransport): bigint {
  w(t, R.DeviceFeaturesSel, 0);
  const lo = BigInt(r(t, R.DeviceFeatures));
  w(t, R.DeviceFeaturesSel, 1);
  return lo | (BigInt(r(t, R.DeviceFeatures)) << 32n);
}
export function writeDriverFeatures(t: VirtioMmioTransport, features: bigint): void {
  w(t, R.DriverFeaturesSel, 0);
  w(t, R.DriverFeatures, Number(features & 0xffff_ffffn));
  w(t, R.DriverFeaturesSel, 1);
  w(t, R.DriverFeatures, Number(features >> 32n));
}
/** Reset, ACK, DRIVER, features, FEATURES_OK; returns whether FEATURES_OK stuck. */
export function negotiate(t: VirtioMmioTransport, features: bigint): boolean {
  w(t, R.Status, 0);
  w(t, R.Status, S.ACKNOWLEDGE);
  w(t, R.Status, S.ACKNOWLEDGE | S.DRIVER);
  writeDriverFeatures(t, features);
  w(t, R.Status, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  return (r(t, R.Status) & S.FEATURES_OK) !== 0;
}
export function setupQueue(t: VirtioMmioTransport, q: QueueSetup): void {
  w(t, R.QueueSel, q.index);
  w(t, R.QueueNum, q.size);
  w(t, R.QueueDescLow, Number(q.desc & 0xffff_ffffn));
  w(t, R.QueueDescHigh, Number(q.desc >> 32n));
  w(t, R.QueueDriverLow, Number(q.driver & 0xffff_ffffn));
  w(t, R.QueueDriverHigh, Number(q.driver >> 32n));
  w(t, R.QueueDeviceLow, Number(q.device & 0xffff_ffffn));
  w(t, R.QueueDeviceHigh, Number(q.device >> 32n));
  w(t, R.QueueReady, 1);
}
export function driverOk(t: VirtioMmioTransport): void {
  w(t, R.Status, r(t, R.Status) | S.DRIVER_OK);
}
