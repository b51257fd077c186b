// Runs every example as a user does: its built JavaScript (dist/, from `tsc -p tsconfig.build.json`)
// in a child process, against the packages' built entry points. Each example checks its own
// results (node:assert) and exits non-zero when one fails; here we also check what it prints.
// CI runs the same programs again from the packed tarballs (scripts/check-packages.mjs).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kvmAvailability } from '@rxvmm/kvm-linux';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const kvm = kvmAvailability();
if (!kvm.available)
  console.warn(`kvm-vcpu-runner: /dev/kvm not usable (${kvm.reason}): it runs and prints "skipped"`);

/** Each example program and a line it must print. */
const programs: Record<string, RegExp> = {
  'soft-kvm-doorbell': /^guest saw 49, 196, 441; exits: io 0x3f0, io 0x3f0, io 0x3f0, io 0x3f4/m,
  'kvm-vcpu-runner': kvm.available ? /^guest saw 49, 196, 441; exits: 4 io, 0 mmio$/m : /^skipped: /m,
  'mmio-entropy-device': /^guest got 2 buffers of 32 random bytes, e\.g\. [0-9a-f]{64}$/m,
  'vhost-user-device': /^\[frontend\] back-end stopped, socket removed$/m,
  'ring-device-loop': /^hostile ring: the loop ended with EFAULT \(descriptor-out-of-memory\)/m,
};
/** Modules that are not programs (imported by one). */
const modules = new Set(['kvm-exit-handler', 'vitest.config']);

describe('examples', () => {
  for (const [name, expected] of Object.entries(programs)) {
    it(`${name}: runs and prints what it shows`, () => {
      const run = spawnSync(process.execPath, [join(root, 'dist', `${name}.js`)], {
        cwd: root,
        encoding: 'utf8',
        timeout: 60_000,
      });
      const output = `${run.stdout}${run.stderr}`;
      expect(run.status, output).toBe(0);
      expect(output).toMatch(expected);
    });
  }

  it('depends on every published package (scripts/check-examples.mjs runs the README blocks here)', () => {
    const own = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).dependencies;
    const published = ['packages', 'apps'].flatMap((group) =>
      readdirSync(join(root, '..', group))
        .map((name) => join(root, '..', group, name, 'package.json'))
        .filter((file) => existsSync(file))
        .map((file) => JSON.parse(readFileSync(file, 'utf8')))
        .filter((pkg) => pkg.private !== true)
        .map((pkg) => pkg.name as string),
    );
    expect(published.filter((name) => own[name] !== 'workspace:^')).toEqual([]);
  });

  it('every example file is run here and has a section in README.md', () => {
    const files = readdirSync(root)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => f.slice(0, -3));
    expect(files.filter((f) => !modules.has(f)).sort()).toEqual(Object.keys(programs).sort());
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    for (const name of Object.keys(programs)) expect(readme).toContain(`## ${name}.ts`);
  });
});
