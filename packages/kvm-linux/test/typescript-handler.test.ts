/**
 * VcpuRunner with a handler module that is TypeScript source (test/fixtures/ts-handler.ts), in a
 * child process started as a VMM author would: with tsx (`node --import tsx`), and with plain node.
 * Node 22+ applies the parent's loader (or its own type stripping) in the vCPU worker, so the
 * handler runs; Node 20 cannot, and the error says so with the loader's own `.code`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { kvmAvailable } from '../src/test-support/availability.js';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const driver = fileURLToPath(new URL('./fixtures/start-runner.mjs', import.meta.url));
const built = existsSync(new URL('../dist/runner/vcpu-worker.js', import.meta.url));
const nodeMajor = Number(process.versions.node.split('.')[0]);
const typeStripping = typeof (process.features as { typescript?: unknown }).typescript === 'string';

type Outcome =
  | { started: true; reason: string; posted: unknown[] }
  | { started: false; code: string; message: string };

function startVmm(execArgv: string[], handler: string): Outcome {
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // the test runner's, not the VMM author's
  const r = spawnSync(process.execPath, [...execArgv, driver, handler], {
    cwd: packageDir, // `--import tsx` resolves from here
    encoding: 'utf8',
    env,
    timeout: 60_000,
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || line === '')
    throw new Error(`driver failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(line) as Outcome;
}

const RAN = { started: true, reason: 'handler-stop', posted: [{ port: 0x3f0, value: 42 }] };

describe.skipIf(!kvmAvailable || !built)('VcpuRunner: a handler written in TypeScript', () => {
  it('under tsx: the worker inherits the loader and runs ts-handler.ts (Node 22+), or says why not (Node 20)', () => {
    const outcome = startVmm(['--import', 'tsx'], './ts-handler.ts');
    if (nodeMajor >= 22) expect(outcome).toEqual(RAN);
    else
      expect(outcome).toEqual({
        started: false,
        code: 'ERR_UNKNOWN_FILE_EXTENSION',
        message: expect.stringMatching(
          /^ERR_UNKNOWN_FILE_EXTENSION: vCPU 0 failed to start: cannot load the handler module file:.*ts-handler\.ts: it is TypeScript and the vCPU worker has no TypeScript loader .* does not apply TypeScript loaders \(tsx, --import hooks\) to worker threads.*run the VMM on Node 22 or newer/,
        ),
      });
  });

  it("under tsx, named as the build output would be ('./ts-handler.js'): tsx maps it to the source (Node 22+); Node 20 names the source it found", () => {
    const outcome = startVmm(['--import', 'tsx'], './ts-handler.js');
    if (nodeMajor >= 22) expect(outcome).toEqual(RAN);
    else
      expect(outcome).toEqual({
        started: false,
        code: 'ERR_MODULE_NOT_FOUND',
        message: expect.stringMatching(
          /^ERR_MODULE_NOT_FOUND: vCPU 0 failed to start: cannot load the handler module .*ts-handler\.js does not exist, but its TypeScript source .*ts-handler\.ts does\. Node 20\.\S+ does not apply TypeScript loaders/,
        ),
      });
  });

  it("plain node: Node's type stripping runs it where Node has it; elsewhere the error names the loaders to start with", () => {
    const outcome = startVmm([], './ts-handler.ts');
    if (typeStripping) expect(outcome).toEqual(RAN);
    else {
      expect(outcome).toMatchObject({ started: false, code: 'ERR_UNKNOWN_FILE_EXTENSION' });
      expect((outcome as { message: string }).message).toMatch(
        nodeMajor >= 22 ? /node --import tsx vmm\.ts/ : /run the VMM on Node 22 or newer/,
      );
    }
  });

  it("plain node, './ts-handler.js' (no such file): the error names the TypeScript source next to it", () => {
    const outcome = startVmm([], './ts-handler.js');
    expect(outcome).toMatchObject({ started: false, code: 'ERR_MODULE_NOT_FOUND' });
    expect((outcome as { message: string }).message).toMatch(
      /ts-handler\.js does not exist, but its TypeScript source .*ts-handler\.ts does/,
    );
    if (typeStripping)
      expect((outcome as { message: string }).message).toMatch(
        /does not map \.js names to them: name the source in `handler` \(new URL\('\.\/ts-handler\.ts', import\.meta\.url\)\)/,
      );
  });

  it('a handler module that does not exist at all: the path, and the loader code', () => {
    const outcome = startVmm([], './no-such-handler.mjs');
    expect(outcome).toMatchObject({
      started: false,
      code: 'ERR_MODULE_NOT_FOUND',
      message: expect.stringMatching(/no-such-handler\.mjs does not exist \(build it, or fix the URL\)\.$/),
    });
  });
});
