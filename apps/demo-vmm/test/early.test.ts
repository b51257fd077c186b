import { describe, expect, it } from 'vitest';
import { prepareEarly, wantsKvm } from '../src/early.js';
import { parseOptions } from '../src/options.js';
import { runDemo } from '../src/run.js';
import { builtMissing, kvmMissing } from './helpers.js';

const built = builtMissing();
const kvm = built ?? kvmMissing();
if (kvm) console.log(`early.test: the worker-starting cases skipped: ${kvm}`);

describe('prepareEarly: the bin starts the vCPU worker before the CLI loads', () => {
  it('starts none for --help or --backend soft (the last --backend wins, as in parseOptions)', () => {
    for (const argv of [
      ['--help'],
      ['-h'],
      ['--backend', 'soft'],
      ['--backend=soft'],
      ['--backend', 'kvm', '--backend', 'soft'],
    ])
      expect(prepareEarly(argv), argv.join(' ')).toBeUndefined();
    expect(wantsKvm(['--backend', 'soft', '--backend', 'kvm'])).toBe(true);
    expect(wantsKvm(['--requests', '4'])).toBe(true);
    expect(wantsKvm(['--', '--help'])).toBe(true);
  });
  it.skipIf(kvm !== undefined)(
    'starts one for a run on /dev/kvm (--backend kvm, or auto where it opens)',
    () => {
      for (const argv of [[], ['--backend', 'kvm', '--requests', '4'], ['--backend=auto', '--json']]) {
        const prepared = prepareEarly(argv);
        expect(prepared?.pending, argv.join(' ')).toBe(true);
        prepared?.[Symbol.dispose]();
        expect(prepared?.pending).toBe(false);
      }
    },
  );

  it.skipIf(kvm !== undefined)('runDemo runs the guest on the early worker and takes it', async () => {
    const prepared = prepareEarly(['--backend', 'kvm']);
    const report = await runDemo(
      parseOptions(['--backend', 'kvm', '--requests', '4', '--block-size', '512']),
      {
        prepared,
      },
    );
    expect(report).toMatchObject({ ok: true, backend: 'kvm', verified: 4 });
    expect(prepared?.pending).toBe(false);
  });

  it.skipIf(kvm !== undefined)('runDemo ends an early worker a SoftKvm run does not use', async () => {
    const prepared = prepareEarly(['--backend', 'kvm']);
    const report = await runDemo(
      parseOptions(['--backend', 'soft', '--requests', '2', '--block-size', '512']),
      {
        prepared,
      },
    );
    expect(report).toMatchObject({ ok: true, backend: 'soft', verified: 2 });
    expect(prepared?.pending).toBe(false);
  });
});
