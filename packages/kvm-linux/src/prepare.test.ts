import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const pkg = fileURLToPath(new URL('..', import.meta.url));

describe('@rxvmm/kvm-linux/prepare', () => {
  it('starts a vCPU worker from the package subpath without loading the native addon or the runner', () => {
    // A fresh process, as a VMM's entry: the built subpath (resolved by package name, self-reference),
    // then the process's mappings and loaded files, then the worker ended by dispose.
    const script = `
      import { readFileSync } from 'node:fs';
      import { prepareVcpu, PreparedVcpu } from '@rxvmm/kvm-linux/prepare';
      const prepared = prepareVcpu({ handler: new URL('./src/runner/fixtures/echo-handler.cjs', 'file://${pkg}'), name: 'early' });
      const maps = readFileSync('/proc/self/maps', 'utf8');
      const out = {
        prepared: prepared instanceof PreparedVcpu,
        pending: prepared.pending,
        addonMapped: maps.includes('rxvmm_sys'),
      };
      prepared[Symbol.dispose]();
      out.pendingAfterDispose = prepared.pending;
      console.log(JSON.stringify(out));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: pkg,
      encoding: 'utf8',
    });
    expect(JSON.parse(out)).toEqual({
      prepared: true,
      pending: true,
      addonMapped: false,
      pendingAfterDispose: false,
    });
  });

  it('the subpath imports nothing of the runner or the addon (its built module graph)', async () => {
    const { readFileSync } = await import('node:fs');
    const imports = (file: string) =>
      [
        ...readFileSync(new URL(`../dist/${file}`, import.meta.url), 'utf8').matchAll(
          /^(?:import|export) .* from '([^']+)';$/gm,
        ),
      ].map((m) => m[1]);
    expect(imports('prepare.js')).toEqual(['./runner/prepared.js']);
    expect(imports('runner/prepared.js').sort()).toEqual([
      '@rxvmm/errno',
      'node:fs',
      'node:url',
      'node:worker_threads',
    ]);
  });
});

describe('the vCPU worker inherits the parent process options', () => {
  it('drops only --conditions (the worker runs built JavaScript); with none it leaves inheritance to Node', async () => {
    const { workerExecArgv } = await import('./runner/prepared.js');
    expect(
      workerExecArgv([
        '--conditions',
        'development',
        '--trace-gc',
        '-C',
        'x',
        '--conditions=y',
        '--cpu-prof',
      ]),
    ).toEqual(['--trace-gc', '--cpu-prof']);
    expect(workerExecArgv(['--trace-gc', '--enable-source-maps'])).toBeUndefined();
  });

  it('a VMM started with a V8 flag a worker cannot take (--trace-gc) still starts its vCPU worker', () => {
    const entry = fileURLToPath(new URL('./runner/fixtures/early-vmm.mjs', import.meta.url));
    const out = execFileSync(process.execPath, ['--trace-gc', entry], { cwd: pkg, encoding: 'utf8' });
    const last = out
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .pop();
    expect(JSON.parse(last ?? '')).toEqual({ error: null });
  });

  it("the worker's stdout and stderr reach the parent's", () => {
    const entry = fileURLToPath(new URL('./runner/fixtures/log-vmm.mjs', import.meta.url));
    const r = spawnSync(process.execPath, [entry], { cwd: pkg, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('handler: stdout line\n');
    expect(r.stderr).toBe('handler: stderr line\n');
  });
});
