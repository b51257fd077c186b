// drive() is what every contract scenario runs on; here on a scripted vCPU (no backend needed).
import type { Vcpu, VcpuExit } from '@rxvmm/kvm';
import { describe, expect, it } from 'vitest';
import { drive } from './drive.js';
import { DONE_PORT, READY_REPORT, REPORT_PORT } from './fixture.js';

const out = (port: number, value: number, size = 4): VcpuExit => ({
  kind: 'io',
  direction: 'out',
  port,
  size,
  count: 1,
  data: Uint8Array.from({ length: size }, (_, i) => (value >>> (8 * i)) & 0xff),
});

/** A vCPU whose run() returns these exits in order; `woken` counts whenRunnable() calls. */
function scripted(exits: VcpuExit[]): Vcpu & { woken: number } {
  const vcpu = {
    id: 0,
    woken: 0,
    run: () => exits.shift() ?? { kind: 'shutdown' },
    whenRunnable: async () => {
      vcpu.woken++;
    },
  };
  return vcpu as unknown as Vcpu & { woken: number };
}

describe('drive', () => {
  it('collects reports, calls onReady at READY_REPORT, waits after intr, and stops at DONE', async () => {
    const vcpu = scripted([
      out(REPORT_PORT, READY_REPORT),
      { kind: 'intr' },
      out(REPORT_PORT, 0x41),
      out(REPORT_PORT, 0x42),
      out(DONE_PORT, 0, 1),
      out(REPORT_PORT, 0x43), // after DONE: never run
    ]);
    const seen: string[] = [];
    const result = await drive(vcpu, {
      onReady: () => void seen.push('ready'),
      onReport: (value, index) => void seen.push(`${index}:${value}`),
    });
    expect(result).toEqual({ reports: [0x41, 0x42], exits: [] });
    expect(seen).toEqual(['ready', '0:65', '1:66']);
    expect(vcpu.woken).toBe(1);
  });

  it('answers reads little-endian into the live data and records a copy of every other exit', async () => {
    const read = new Uint8Array(4);
    const vcpu = scripted([
      { kind: 'mmio', isWrite: false, addr: 0xd000_0000n, len: 4, data: read },
      { kind: 'mmio', isWrite: true, addr: 0xd000_0004n, len: 2, data: Uint8Array.of(1, 2) },
      out(DONE_PORT, 0, 1),
    ]);
    const { exits } = await drive(vcpu, { answer: () => 0x1122_3344n });
    expect([...read]).toEqual([0x44, 0x33, 0x22, 0x11]);
    expect(exits).toMatchObject([
      { kind: 'mmio', isWrite: false, addr: 0xd000_0000n },
      { kind: 'mmio', isWrite: true, addr: 0xd000_0004n, data: Uint8Array.of(1, 2) },
    ]);
  });

  it('stops at `until`, and reports any other exit, or a guest that never finishes, as an error', async () => {
    expect((await drive(scripted([{ kind: 'hlt' }]), { until: 'hlt' })).exits).toEqual([{ kind: 'hlt' }]);
    await expect(drive(scripted([{ kind: 'hlt' }]))).rejects.toThrow(/guest stopped with a hlt exit/);
    const endless = { run: () => out(0x80, 0, 1), whenRunnable: async () => {} } as unknown as Vcpu;
    await expect(drive(endless, { maxExits: 5 })).rejects.toThrow(/did not finish within 5 exits/);
  });
});
