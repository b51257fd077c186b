/**
 * Runs a contract guest to DONE, collecting its reports and the exits the
 * VMM saw, answering reads, and calling `onReady` at READY_REPORT.
 */
import type { Vcpu, VcpuExit } from '@rxvmm/kvm';
import { DONE_PORT, READY_REPORT, REPORT_PORT } from './fixture.js';

export interface DriveResult {
  /** Values reported on REPORT_PORT (READY_REPORT excluded). */
  reports: number[];
  /** Every other exit, with a copy of its data taken when it happened. */
  exits: VcpuExit[];
}

export interface DriveOptions {
  /** Answer for MMIO/PIO reads (written into the exit's data, little-endian). */
  answer?: (exit: Extract<VcpuExit, { kind: 'mmio' | 'io' }>) => bigint;
  /** At each report (before the guest continues); may be async. */
  onReport?: (value: number, index: number) => void | Promise<void>;
  /** At READY_REPORT; may be async. */
  onReady?: () => void | Promise<void>;
  /** Stop at the first exit of this kind instead of DONE (e.g. 'hlt'). */
  until?: VcpuExit['kind'];
  /** Safety net against a guest that never finishes (exits, not time). */
  maxExits?: number;
}

function le(data: Uint8Array): number {
  let v = 0;
  for (let i = Math.min(4, data.length) - 1; i >= 0; i--) v = v * 256 + (data[i] as number);
  return v >>> 0;
}

function copyExit(exit: VcpuExit): VcpuExit {
  if (exit.kind === 'mmio' || exit.kind === 'io') return { ...exit, data: exit.data.slice() };
  return { ...exit };
}

export async function drive(vcpu: Vcpu, options: DriveOptions = {}): Promise<DriveResult> {
  const reports: number[] = [];
  const exits: VcpuExit[] = [];
  const maxExits = options.maxExits ?? 10_000;
  for (let n = 0; n < maxExits; n++) {
    const exit = vcpu.run();
    if (exit.kind === 'intr') {
      await vcpu.whenRunnable();
      continue;
    }
    if (exit.kind === options.until) {
      exits.push(copyExit(exit));
      return { reports, exits };
    }
    if (exit.kind === 'io' && exit.direction === 'out' && exit.port === DONE_PORT) return { reports, exits };
    if (exit.kind === 'io' && exit.direction === 'out' && exit.port === REPORT_PORT && exit.size === 4) {
      const value = le(exit.data);
      if (value === READY_REPORT) await options.onReady?.();
      else {
        reports.push(value);
        await options.onReport?.(value, reports.length - 1);
      }
      continue;
    }
    if (exit.kind === 'mmio' || exit.kind === 'io') {
      exits.push(copyExit(exit));
      const isRead = exit.kind === 'mmio' ? !exit.isWrite : exit.direction === 'in';
      if (isRead) {
        let v = options.answer?.(exit) ?? 0n;
        for (let i = 0; i < exit.data.length; i++) {
          exit.data[i] = Number(v & 0xffn);
          v >>= 8n;
        }
      }
      continue;
    }
    throw new Error(
      `guest stopped with a ${exit.kind} exit: ${JSON.stringify(exit, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))}`,
    );
  }
  throw new Error(`guest did not finish within ${maxExits} exits`);
}
