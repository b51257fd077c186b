// The machine the page runs, driven in Node: the same code, no browser.
import { afterEach, describe, expect, it } from 'vitest';
import { PlaygroundMachine } from '../src/machine.js';
import type { Counters, Stage, TraceEvent } from '../src/trace.js';
import { exitsPerRequest } from '../src/trace.js';

const machines: PlaygroundMachine[] = [];
afterEach(() => {
  for (const m of machines.splice(0)) m.close();
});

async function boot(options: { ioeventfd?: boolean; irqfd?: boolean } = {}): Promise<PlaygroundMachine> {
  const machine = await PlaygroundMachine.boot(options);
  machines.push(machine);
  return machine;
}

/** Grants `n` requests, runs until the guest waits again, returns the counters' change. */
async function runRequests(machine: PlaygroundMachine, n: number): Promise<Counters> {
  const before = { ...machine.counters };
  machine.grant(n);
  machine.stepper.run();
  await machine.whenIdle();
  machine.stepper.pause();
  expect(machine.failure).toBeUndefined();
  const after = machine.counters;
  return Object.fromEntries(
    Object.entries(after).map(([k, v]) => [k, v - before[k as keyof Counters]]),
  ) as unknown as Counters;
}

describe('the playground machine (SoftKvm, virtio-mmio, DeviceServer + serveQueue, echo device)', () => {
  it('boots: the driver sets the device up, then the guest waits for its first request', async () => {
    const machine = await boot();
    expect(machine.idle).toBe(true);
    expect(machine.counters.setupExits).toBeGreaterThan(15);
    expect(machine.counters.requestExits).toBe(0);
    expect(machine.transport.status & 4).toBe(4); // DRIVER_OK
  });

  it('ioeventfd + irqfd: every doorbell absorbed, every interrupt by the irqfd, 2 exits per request', async () => {
    const machine = await boot();
    const d = await runRequests(machine, 20);
    expect(d).toMatchObject({
      sent: 20,
      verified: 20,
      failed: 0,
      doorbells: 20,
      absorbed: 20,
      doorbellExits: 0,
      kicks: 20,
      chains: 20,
      irqfdInjections: 20,
      vmmInjections: 0,
      guestInterrupts: 20,
      requestExits: 40,
      interruptStatusExits: 20,
      interruptAckExits: 20,
    });
    expect(exitsPerRequest(machine.counters)).toBe(2);
    const last = machine.requests.at(-1);
    expect(last).toMatchObject({
      id: 19,
      ok: true,
      reply: 'PING 19 FROM THE GUEST',
      absorbed: true,
      exits: 2,
    });
    expect(last?.path).toEqual<Stage[]>([
      'doorbell',
      'ioeventfd',
      'kick',
      'pop',
      'used',
      'call',
      'irqfd',
      'interrupt',
      'exit',
      'exit',
      'verified',
    ]);
  });

  it('ioeventfd off: each doorbell is one more exit, handled by the VMM (what rxvmm-demo --no-ioeventfd shows)', async () => {
    const machine = await boot();
    const on = await runRequests(machine, 10);
    machine.setIoeventfd(false);
    const off = await runRequests(machine, 10);
    expect(off.requestExits - on.requestExits).toBe(off.doorbells);
    expect(off).toMatchObject({
      doorbells: 10,
      absorbed: 0,
      doorbellExits: 10,
      requestExits: 30,
      verified: 10,
    });
    expect(machine.requests.at(-1)?.path.slice(0, 3)).toEqual(['doorbell', 'exit', 'kick']);
  });

  it('irqfd off: the VMM injects every interrupt with KVM_IRQ_LINE, and the exit count does not change', async () => {
    const machine = await boot({ irqfd: false });
    const d = await runRequests(machine, 10);
    expect(d).toMatchObject({
      irqfdInjections: 0,
      vmmInjections: 10,
      guestInterrupts: 10,
      verified: 10,
      requestExits: 20,
    });
    expect(machine.requests.at(-1)?.path).toContain('irq-line');
  });

  it('both off: one more exit per doorbell and every interrupt injected by the VMM', async () => {
    const machine = await boot({ ioeventfd: false, irqfd: false });
    const d = await runRequests(machine, 10);
    expect(d).toMatchObject({
      doorbellExits: 10,
      absorbed: 0,
      vmmInjections: 10,
      irqfdInjections: 0,
      requestExits: 30,
      verified: 10,
    });
    expect(exitsPerRequest(machine.counters)).toBe(3);
  });

  it('steps one hop at a time; a step with nothing queued grants the next request', async () => {
    const machine = await boot();
    const events: TraceEvent[] = [];
    machine.onEvent((e) => events.push(e));
    const labels: string[] = [];
    for (let i = 0; i < 200 && machine.counters.verified < 2; i++) {
      const next = machine.stepper.next ?? 'grant';
      expect(machine.step()).toBe(true);
      labels.push(next);
      // Let eventfd deliveries and promise completions queue their hops.
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(machine.counters.verified).toBe(2);
    expect(labels.slice(0, 8)).toEqual([
      'grant',
      'the vCPU runs', // woken by the tick: sends request 0, sleeps
      'the kick eventfd wakes the device',
      'the device completes the chain',
      'the call eventfd fires the irqfd',
      'the vCPU runs', // takes the interrupt: InterruptStatus exit
      'the vCPU runs', // InterruptACK exit
      'the vCPU runs', // EOI, checks the reply, waits for the next grant
    ]);
    expect(events.filter((e) => e.request === 0).map((e) => e.stage)).toEqual([
      'grant',
      'doorbell',
      'ioeventfd',
      'sleep',
      'kick',
      'pop',
      'used',
      'call',
      'irqfd',
      'interrupt',
      'exit',
      'exit',
      'verified',
      'sleep',
    ]);
  });

  it('toggles at run time: KVM_IOEVENTFD and KVM_IRQFD are deassigned and assigned again', async () => {
    const machine = await boot();
    machine.setIoeventfd(false);
    machine.setIrqfd(false);
    await runRequests(machine, 3);
    machine.setIoeventfd(true);
    machine.setIrqfd(true);
    const d = await runRequests(machine, 3);
    expect(d).toMatchObject({
      absorbed: 3,
      doorbellExits: 0,
      irqfdInjections: 3,
      vmmInjections: 0,
      verified: 3,
    });
  });
});
