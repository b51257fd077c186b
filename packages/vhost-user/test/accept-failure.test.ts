// accept(2) failing while a connection waits (EMFILE: out of fds) must not spin:
// the listener stays readable, so re-polling at once logs the same error in a
// busy loop at 100% CPU. The server backs off and accepts once accept works again.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

const failing = { on: false, calls: 0 };
vi.mock('@rxvmm/sys', async (importOriginal) => {
  const sys = await importOriginal<typeof import('@rxvmm/sys')>();
  return {
    ...sys,
    unixAccept: (fd: number) => {
      if (failing.on) {
        failing.calls++;
        throw Object.assign(new Error('EMFILE: too many open files, accept4'), { code: 'EMFILE' });
      }
      return sys.unixAccept(fd);
    },
  };
});

const { expectServes, startServer } = await import('./helpers.js');
const { unixConnect, unixSocket, close } = await import('@rxvmm/sys');

const dir = mkdtempSync(join(tmpdir(), 'rxvmm-vu-accept-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('accept failures', () => {
  it('backs off instead of spinning on a listener that stays readable, then serves again', async () => {
    const rig = startServer(join(dir, 'a'));
    try {
      failing.on = true;
      const waiting = unixSocket(false);
      unixConnect(waiting, rig.path);
      // Many turns of the event loop: a server that re-polls at once fails on each one.
      for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
      expect(failing.calls).toBe(1);
      expect(rig.logs.filter((l) => /accept failed: EMFILE/.test(l))).toHaveLength(1);
      failing.on = false;
      close(waiting); // the waiting connection is accepted and ends at once
      expect(await rig.nextEnd()).toBeNull();
      await expectServes(rig);
    } finally {
      await rig.server.close();
    }
  });
});
