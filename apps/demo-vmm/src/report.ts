/** The human summary table printed at the end of a run. */
import type { DemoReport } from './run.js';

function fixed(v: number, digits: number): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '-';
}

export function formatSummary(r: DemoReport): string {
  const path = r.vhostUser
    ? `vhost-user back-end at ${r.vhostUser}`
    : `${r.ioeventfd ? 'ioeventfd' : 'doorbell exits to the VMM'}, ${r.irqfd ? 'irqfd' : 'KVM_IRQ_LINE from the VMM'}`;
  const rows: [string, string][] = [
    ['backend', r.backend === 'kvm' ? 'kvm (/dev/kvm)' : 'soft (SoftKvm, TypeScript guest)'],
    ['device path', path],
    ['requests verified', `${r.verified} / ${r.requests} (write + read back each)`],
    ['bytes through the device', `${r.bytes}`],
    ['guest run time', `${fixed(r.seconds, 3)} s`],
    ['µs per request', fixed(r.usPerRequest, 1)],
    [
      'exits',
      `${r.exits.total} (mmio ${r.exits.mmio}, io ${r.exits.io}, hlt ${r.exits.hlt}, intr ${r.exits.intr}, other ${r.exits.other})`,
    ],
    ['exits per request', fixed(r.exitsPerRequest, 2)],
    ['ioeventfd signals', `${r.ioeventfdSignals}`],
    ['irqfd injections', `${r.irqfdInjections}`],
    ['KVM_IRQ_LINE injections', `${r.irqLineInjections}`],
    ['guest interrupts taken', `${r.guestInterrupts}`],
    ['start-up (process → guest HELLO)', r.startupMs === null ? '-' : `${fixed(r.startupMs, 1)} ms`],
    ['peak RSS', `${fixed(r.peakRssMiB, 1)} MiB (guest RAM ${r.guestRamMiB} MiB)`],
    ['device status', `0x${r.deviceStatus.toString(16)}${r.needsReset ? ' (DEVICE_NEEDS_RESET)' : ''}`],
    ['result', r.ok ? 'OK: every request verified' : `FAILED: ${r.error}`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n');
}
