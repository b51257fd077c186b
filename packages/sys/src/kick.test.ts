import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import * as sys from './index.js';

const addonPath = createRequire(import.meta.url).resolve('../build/Release/rxvmm_sys.node');

describe('thread kicks (SIGUSR2, no SA_RESTART)', () => {
  it('prepareKickTarget returns the calling thread id; a gone thread is reported, not signalled', () => {
    expect(sys.KICK_SIGNAL).toBe(12); // SIGUSR2 on Linux x86-64
    expect(sys.prepareKickTarget()).toBe(sys.gettid());
    expect(sys.gettid()).toBe(process.pid); // the main thread
    expect(sys.kickThread(0x3fff_fff0)).toBe(false);
  });

  it('survives a JavaScript SIGUSR2 listener coming and going (libuv restores SIG_DFL)', async () => {
    const listener = () => {};
    process.on('SIGUSR2', listener);
    process.off('SIGUSR2', listener);
    // Without re-installing the no-op handler this would terminate the process.
    expect(sys.kickThread(sys.gettid())).toBe(true);
    await new Promise((r) => setTimeout(r, 10));
    expect(sys.kickThread(sys.gettid())).toBe(true);
  });

  it('kicks a worker thread blocked in a syscall without killing the process', async () => {
    const efd = sys.eventfd(0, sys.EFD_CLOEXEC); // blocking
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const sys = require(workerData.addonPath);
       parentPort.postMessage({ tid: sys.prepareKickTarget() });
       const value = sys.read8(workerData.efd); // blocks; read8 retries after EINTR
       parentPort.postMessage({ value });`,
      { eval: true, workerData: { addonPath, efd } },
    );
    // Listened for from the start: Node 24 may emit 'exit' before the last 'message' is handled.
    const exited = new Promise((r) => worker.once('exit', r));
    const messages: Array<{ tid?: number; value?: bigint }> = [];
    const next = () =>
      new Promise<{ tid?: number; value?: bigint }>((resolve) => worker.once('message', resolve));
    messages.push(await next());
    const tid = messages[0]?.tid ?? 0;
    expect(tid).not.toBe(sys.gettid());
    await new Promise((r) => setTimeout(r, 20)); // let it enter read(2)
    expect(sys.kickThread(tid)).toBe(true);
    expect(sys.kickThread(tid)).toBe(true);
    sys.write8(efd, 5n);
    messages.push(await next());
    expect(messages[1]?.value).toBe(5n);
    await exited;
    sys.close(efd);
  });
});
