import { execFileSync } from 'node:child_process';
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
          /^import .* from '([^']+)';$/gm,
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
