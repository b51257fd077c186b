// The README example, checked: the same functions, against a recording Vm and a scripted Vcpu.
import { expect, it } from 'vitest';
import { IOEVENTFD_FLAG_DATAMATCH, type Vcpu, type VcpuExit, type Vm } from './index.js';

function wireQueue(
  vm: Pick<Vm, 'ioeventfd' | 'setGsiRouting' | 'irqfd'>,
  kick: { fd: number },
  call: { fd: number },
  queue: number,
): void {
  const datamatch = BigInt(queue);
  vm.ioeventfd({ addr: 0xd000_0050n, len: 4, fd: kick, flags: IOEVENTFD_FLAG_DATAMATCH, datamatch });
  vm.setGsiRouting([{ gsi: 24, type: 'msi', addressLo: 0xfee0_0000, addressHi: 0, data: 0x40 }]);
  vm.irqfd({ fd: call, gsi: 24 });
}

function runUntilDone(vcpu: Pick<Vcpu, 'run'>): string[] {
  const seen: string[] = [];
  for (;;) {
    const exit = vcpu.run();
    if (exit.kind === 'mmio') {
      if (!exit.isWrite) exit.data.fill(0xff);
      seen.push(`mmio 0x${exit.addr.toString(16)}`);
    } else if (exit.kind === 'io' && exit.direction === 'out' && exit.port === 0x3f4) {
      return seen;
    } else if (exit.kind !== 'io') {
      throw new Error(`unexpected exit ${exit.kind}`);
    }
  }
}

it('README: wireQueue makes the three VM calls with the KVM values', () => {
  const calls: [string, unknown][] = [];
  wireQueue(
    {
      ioeventfd: (args) => calls.push(['ioeventfd', args]),
      setGsiRouting: (entries) => calls.push(['setGsiRouting', entries]),
      irqfd: (args) => calls.push(['irqfd', args]),
    },
    { fd: 10 },
    { fd: 11 },
    2,
  );
  expect(calls).toEqual([
    ['ioeventfd', { addr: 0xd000_0050n, len: 4, fd: { fd: 10 }, flags: 1, datamatch: 2n }],
    ['setGsiRouting', [{ gsi: 24, type: 'msi', addressLo: 0xfee0_0000, addressHi: 0, data: 0x40 }]],
    ['irqfd', { fd: { fd: 11 }, gsi: 24 }],
  ]);
});

it('README: runUntilDone answers MMIO reads and stops at the DONE port', () => {
  const read = new Uint8Array(4);
  const exits: VcpuExit[] = [
    { kind: 'mmio', isWrite: false, addr: 0xd000_0000n, len: 4, data: read },
    { kind: 'io', direction: 'out', port: 0x3f8, size: 1, count: 1, data: Uint8Array.of(42) },
    { kind: 'io', direction: 'out', port: 0x3f4, size: 1, count: 1, data: Uint8Array.of(0) },
  ];
  expect(runUntilDone({ run: () => exits.shift() ?? { kind: 'shutdown' } })).toEqual(['mmio 0xd0000000']);
  expect([...read]).toEqual([0xff, 0xff, 0xff, 0xff]);
  expect(() => runUntilDone({ run: () => ({ kind: 'shutdown' }) })).toThrow(/unexpected exit shutdown/);
});
