// `pnpm demo` (scripts/demo.mjs): the build is quiet (one line, or its whole log when it fails), then
// rxvmm-demo runs with the arguments given and its exit code is the script's. The build command is
// replaced here (RXVMM_DEMO_BUILD) by one that prints 150 lines, as turbo + tsc do.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { builtMissing } from './helpers.js';

const script = fileURLToPath(new URL('../../../scripts/demo.mjs', import.meta.url));
const built = builtMissing();

function pnpmDemo(build: string, args: string[]) {
  const r = spawnSync(process.execPath, [script, ...args], {
    encoding: 'utf8',
    env: { ...process.env, RXVMM_DEMO_BUILD: build },
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const NOISY_BUILD = 'i=0; while [ $i -lt 150 ]; do i=$((i+1)); echo "build log line $i"; done';

describe.skipIf(built !== undefined)('pnpm demo', () => {
  it('builds quietly: one line on stderr, none of the build log; then the demo, with its arguments', () => {
    const r = pnpmDemo(NOISY_BUILD, ['--help']);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^built rxvmm-demo and its packages \(\d+\.\d s\)\n$/);
    expect(r.stdout).toMatch(/^Usage: rxvmm-demo/);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/build log line/);
  });

  it('a failed build: its whole log, what failed, its exit code; the demo does not run', () => {
    const r = pnpmDemo(`${NOISY_BUILD}; echo "src/x.ts(1,1): error TS1005" >&2; exit 3`, ['--help']);
    expect(r.status).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/build log line 150\nsrc\/x\.ts\(1,1\): error TS1005\n/);
    expect(r.stderr).toMatch(/pnpm demo: the build failed \(exit 3, \d+\.\d s\): its log is above\n$/);
  });

  it("the demo's exit code and output pass through (a usage error: 2)", () => {
    const r = pnpmDemo('true', ['--requests', '-1']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /rxvmm-demo: --requests must be between 1 and 1000000, got -1\nTry 'rxvmm-demo --help'\.\n$/,
    );
  });
});
