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
    const o = parseOptions([
      '--backend=soft',
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
      backend: 'soft',
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
  ])('rejects %j with a clear message', (argv, message) => {
    expect(() => parseOptions(argv)).toThrow(UsageError);
    expect(() => parseOptions(argv)).toThrow(message);
  });
});
