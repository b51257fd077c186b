// The README's library example: runDemo on SoftKvm (no build, no /dev/kvm needed).
import { describe, expect, it } from 'vitest';
import { parseOptions, runDemo, UsageError } from '../src/index.js';

describe('runDemo (library API)', () => {
  it('the README example: 8 requests on SoftKvm, every one verified, exits counted', async () => {
    const report = await runDemo(
      parseOptions(['--backend', 'soft', '--requests', '8', '--block-size', '1024']),
    );
    expect(report.ok).toBe(true);
    expect(report.verified).toBe(8);
    expect(report.bytes).toBe(8 * 2 * 1024);
    expect(report.ioeventfdSignals).toBe(16);
    expect(report.irqfdInjections).toBe(16);
    // 2 MMIO exits per transfer (the handler's InterruptStatus read and ACK write) on top of the set-up.
    const small = await runDemo(
      parseOptions(['--backend', 'soft', '--requests', '4', '--block-size', '1024']),
    );
    expect(report.exits.mmio - small.exits.mmio).toBe(4 * (8 - 4));
    expect(report.exits.io).toBe(2);
  });

  it('--no-ioeventfd on SoftKvm: one more MMIO exit per doorbell', async () => {
    const base = await runDemo(parseOptions(['--backend', 'soft', '--requests', '6', '--block-size', '512']));
    const slow = await runDemo(
      parseOptions(['--backend', 'soft', '--requests', '6', '--block-size', '512', '--no-ioeventfd']),
    );
    expect(slow.ok && base.ok).toBe(true);
    expect(slow.exits.mmio - base.exits.mmio).toBe(12);
    expect(slow.kicks).toBe(12);
    expect(slow.ioeventfdSignals).toBe(0);
  });

  it('--vhost-user needs the kvm backend: a usage error from parseOptions, a clear error from runDemo', async () => {
    expect(() => parseOptions(['--backend', 'soft', '--vhost-user', '/nonexistent.sock'])).toThrow(
      UsageError,
    );
    await expect(
      runDemo({ ...parseOptions(['--backend', 'soft']), vhostUser: '/nonexistent.sock' }),
    ).rejects.toThrow(/--vhost-user needs the kvm backend .*but --backend soft was asked for/);
  });
});
