import { describe, expect, it } from 'vitest';
import { parseOptions, UsageError } from './options.js';

describe('parseOptions', () => {
  it('has sane defaults', () => {
    expect(parseOptions([])).toMatchObject({
      backend: 'auto',
      disk: undefined,
      requests: 256,
      blockSize: 4096,
      ioeventfd: true,
      irqfd: true,
      json: false,
      guestMode: 'normal',
    });
  });

  it('reads every flag', () => {
    // (kvm: --vhost-user with --backend soft is a usage error)
    const o = parseOptions([
      '--backend=kvm',
      '--disk',
      '/tmp/d.img',
      '--requests',
      '10',
      '--block-size',
      '1024',
      '--no-ioeventfd',
      '--no-irqfd',
      '--vhost-user',
      '/tmp/s',
      '--json',
    ]);
    expect(o).toMatchObject({
      backend: 'kvm',
      disk: '/tmp/d.img',
      requests: 10,
      blockSize: 1024,
      ioeventfd: false,
      irqfd: false,
      vhostUser: '/tmp/s',
      json: true,
    });
  });

  it.each([
    [['--frobnicate'], /Unknown option/],
    [['--backend', 'xen'], /--backend must be/],
    [['--requests', '0'], /between 1 and/],
    [['--requests', '1.5'], /whole number/],
    [['--block-size', '1000'], /multiple of 512/],
    [['--block-size', String(4 << 20)], /between 1 and/],
    [['extra'], /positional/i],
    // Negative and huge numbers, with a space or '=': the range check answers, not parseArgs.
    [['--requests', '-1'], /^--requests must be between 1 and 1000000, got -1$/],
    [['--requests=-1'], /^--requests must be between 1 and 1000000, got -1$/],
    [
      ['--requests', '99999999999999999999'],
      /^--requests must be between 1 and 1000000, got 99999999999999999999$/,
    ],
    [['--block-size', '-512'], /^--block-size must be between 1 and 1048576, got -512$/],
    [['--requests', '-1.5'], /^--requests wants a whole number between 1 and 1000000, got '-1\.5'$/],
    [['--requests'], /^--requests needs a value$/],
    [['--disk', '-x'], /^--disk needs a value; for a value that starts with '-', write --disk=VALUE$/],
    [['--json=yes'], /^Option '--json' does not take an argument$/],
    [['--backend', 'soft', '--vhost-user', '/tmp/s'], /^--vhost-user needs --backend kvm/],
  ])('rejects %j with a clear message on one line', (argv, message) => {
    expect(() => parseOptions(argv)).toThrow(UsageError);
    expect(() => parseOptions(argv)).toThrow(message);
    expect(() => parseOptions(argv)).toThrow(/^[^\n]*$/);
  });

  it('takes --disk=-x as a file named -x, and --requests=+8 as 8', () => {
    expect(parseOptions(['--disk=-x', '--requests=+8'])).toMatchObject({ disk: '-x', requests: 8 });
  });
});
