import { afterEach, describe, expect, it, vi } from 'vitest';
import { debug, debugEnabled } from './debug.js';

describe('debugEnabled: NODE_DEBUG patterns as util.debuglog reads them', () => {
  it.each([
    ['rxvmm:*', 'rxvmm:virtio-mmio', true],
    ['rxvmm:*', 'rxvmm:virtio-blk', true],
    ['RXVMM:VIRTIO-MMIO', 'rxvmm:virtio-mmio', true],
    ['net, rxvmm:virtio-blk', 'rxvmm:virtio-blk', true],
    ['rxvmm:virtio-blk', 'rxvmm:virtio-mmio', false],
    ['rxvmm', 'rxvmm:virtio-mmio', false],
    ['*', 'rxvmm:virtio-mmio', true],
    ['', 'rxvmm:virtio-mmio', false],
    ['rxvmm:virtio.mmio', 'rxvmm:virtio-mmio', false],
  ])('%j enables %s: %s', (setting, namespace, expected) => {
    expect(debugEnabled(namespace, setting)).toBe(expected);
  });
});

describe('debug(namespace)', () => {
  const saved = process.env.NODE_DEBUG;
  afterEach(() => {
    if (saved === undefined) delete process.env.NODE_DEBUG;
    else process.env.NODE_DEBUG = saved;
    vi.restoreAllMocks();
  });

  it('prints NAMESPACE pid: message to stderr when switched on, with printf arguments', () => {
    process.env.NODE_DEBUG = 'rxvmm:*';
    const printed = vi.spyOn(console, 'error').mockImplementation(() => {});
    const log = debug('rxvmm:test');
    expect(log.enabled).toBe(true);
    expect(log.namespace).toBe('rxvmm:test');
    log('queue %d refused', 3);
    expect(printed).toHaveBeenCalledWith(`RXVMM:TEST ${process.pid}: queue %d refused`, 3);
  });

  it('is silent when the namespace is off, and decides once, like debuglog', () => {
    process.env.NODE_DEBUG = 'rxvmm:other';
    const printed = vi.spyOn(console, 'error').mockImplementation(() => {});
    const log = debug('rxvmm:test');
    log('not printed');
    process.env.NODE_DEBUG = 'rxvmm:*';
    log('still not printed');
    expect(log.enabled).toBe(false);
    expect(printed).not.toHaveBeenCalled();
  });
});
