// EventFd.fromFd: adopting an eventfd made elsewhere (e.g. received over SCM_RIGHTS by vhost-user).
import { readlinkSync } from 'node:fs';
import * as sys from '@rxvmm/sys';
import { firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { EventFd } from './index.js';

const isOpen = (fd: number): boolean => {
  try {
    readlinkSync(`/proc/self/fd/${fd}`);
    return true;
  } catch {
    return false;
  }
};

describe('EventFd.fromFd', () => {
  it('adopts a blocking eventfd: non-blocking from then on, signals$ works, close() closes it', async () => {
    const raw = sys.eventfd(0, sys.EFD_CLOEXEC); // blocking, as a peer process might send it
    const efd = EventFd.fromFd(raw, { nonblock: true });
    expect(efd.fd).toBe(raw);
    expect(() => efd.read()).toThrow(expect.objectContaining({ code: 'EAGAIN' })); // did not block
    const got = firstValueFrom(efd.signals$);
    sys.write8(raw, 5n);
    expect(await got).toBe(5n);
    efd.close();
    expect(isOpen(raw)).toBe(false);
  });

  it('refuses what is not an fd number', () => {
    expect(() => EventFd.fromFd(-1)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(() => EventFd.fromFd(1.5)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });
});
