/**
 * vcpu.run() on the main thread of a VM wired for events (here: the in-kernel irqchip) warns once,
 * with a code; not without such wiring, not with { mainThreadRun: 'allow' } (on the vCPU or the
 * whole handle), not with Node's --disable-warning. Each case is its own process (the warning is
 * once per process, and only the main thread of a process is the main thread).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MAIN_THREAD_RUN_WARNING } from '../src/index.js';
import { kvmAvailable } from '../src/test-support/availability.js';

const driver = fileURLToPath(new URL('./fixtures/main-thread-run.mjs', import.meta.url));

function run(args: string[], execArgv: string[] = []) {
  const r = spawnSync(process.execPath, [...execArgv, driver, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(r.status, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout)).toEqual([0x3f0, 0x3f0, 0x3f4]); // three runs, each returned
  return r.stderr.split(`[${MAIN_THREAD_RUN_WARNING}]`).length - 1;
}

describe.skipIf(!kvmAvailable)('vcpu.run() on the main thread', () => {
  it('with an in-kernel irqchip: one warning for three runs, saying why and what to do', () => {
    const r = spawnSync(process.execPath, [driver, 'irqchip'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr.split(`[${MAIN_THREAD_RUN_WARNING}]`).length - 1).toBe(1);
    expect(r.stderr).toMatch(
      /vcpu\.run\(\) on the main thread of a VM with an in-kernel irqchip: KVM_RUN blocks/,
    );
    expect(r.stderr).toMatch(
      /Run the vCPU on a worker with VcpuRunner, or pass \{ mainThreadRun: 'allow' \}/,
    );
  });

  it('no warning without event wiring, with mainThreadRun: allow, or with --disable-warning', () => {
    expect(run([])).toBe(0);
    expect(run(['irqchip', 'allow'])).toBe(0);
    expect(run(['irqchip', 'allow-all'])).toBe(0);
    expect(run(['irqchip'], [`--disable-warning=${MAIN_THREAD_RUN_WARNING}`])).toBe(0);
  });
});
