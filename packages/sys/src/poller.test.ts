// uv_poll readiness polling: counter mode, plain mode, closing while polling
// (also from inside the callback), worker threads, and throwing callbacks.
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import {
  close,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  eventfd,
  Poller,
  read8,
  UV_READABLE,
  UV_WRITABLE,
  write8,
} from './index.js';

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
const packageRoot = fileURLToPath(new URL('..', import.meta.url));

describe('Poller', () => {
  it('counter mode reads the value natively and passes it to the callback', async () => {
    const fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    const values: bigint[] = [];
    let resolve!: () => void;
    const done = new Promise<void>((r) => {
      resolve = r;
    });
    const poller = new Poller(
      fd,
      (error, events, value) => {
        expect(error).toBeNull();
        expect(events & UV_READABLE).toBe(UV_READABLE);
        values.push(value as bigint);
        if (values.length === 2) resolve();
        else write8(fd, 5n);
      },
      true,
    );
    poller.start(UV_READABLE);
    write8(fd, 3n);
    write8(fd, 4n); // coalesces with the 3 before the loop runs
    await done;
    expect(values).toEqual([7n, 5n]);
    poller.close();
    close(fd);
  });

  it('plain mode reports events and leaves reading to JavaScript', async () => {
    const fd = eventfd(9, EFD_NONBLOCK | EFD_CLOEXEC);
    const seen = await new Promise<number>((resolve) => {
      const poller = new Poller(fd, (_error, events, value) => {
        expect(value).toBeUndefined();
        poller.close(); // closing inside the callback is safe
        resolve(events);
      });
      poller.start(UV_READABLE | UV_WRITABLE);
    });
    expect(seen & UV_READABLE).toBe(UV_READABLE);
    expect(seen & UV_WRITABLE).toBe(UV_WRITABLE);
    expect(read8(fd)).toBe(9n); // nothing was consumed
    close(fd);
  });

  it('stop() pauses and start() resumes; a closed poller refuses start with EBADF', async () => {
    const fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    const values: bigint[] = [];
    const poller = new Poller(fd, (_e, _ev, value) => values.push(value as bigint), true);
    poller.start(UV_READABLE);
    poller.stop();
    write8(fd, 1n);
    await nextTurn();
    await nextTurn();
    expect(values).toEqual([]);
    poller.start(UV_READABLE);
    while (values.length === 0) await nextTurn();
    expect(values).toEqual([1n]);
    poller.close();
    poller.close();
    expect(() => poller.start(UV_READABLE)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    close(fd);
  });

  it('closing while polling delivers nothing more, even when the fd number is reused', async () => {
    const fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    let calls = 0;
    const poller = new Poller(fd, () => calls++, true);
    poller.start(UV_READABLE);
    write8(fd, 1n); // readable now, but the loop has not run yet
    poller.close();
    close(fd);
    const again = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC); // typically the same number
    await nextTurn();
    await nextTurn();
    expect(calls).toBe(0);
    expect(read8(again)).toBe(1n);
    close(again);
  });

  it('works inside a worker thread, which may end or be terminated with pollers open', async () => {
    // The worker creates its own eventfd and poller on its own loop and reports
    // the values it sees; the main thread writes to the same fd (same process).
    const code = `
      const { parentPort } = require('node:worker_threads');
      const sys = require('node-gyp-build')(${JSON.stringify(packageRoot)});
      const fd = sys.eventfd(0, sys.fdConstants.EFD_NONBLOCK);
      const idle = new sys.Poller(sys.eventfd(0, sys.fdConstants.EFD_NONBLOCK), () => {});
      idle.start(sys.pollConstants.UV_READABLE);
      idle.stop(); // open but stopped: must not keep the loop, nor break its teardown
      const poller = new sys.Poller(fd, (err, events, value) => parentPort.postMessage(String(value)), true);
      poller.start(sys.pollConstants.UV_READABLE);
      parentPort.postMessage(fd);
    `;
    const worker = new Worker(code, { eval: true });
    const [fd] = (await once(worker, 'message')) as [number];
    write8(fd, 41n);
    const [value] = (await once(worker, 'message')) as [string];
    expect(value).toBe('41');
    const exitCode = await worker.terminate(); // the active poller is closed by the cleanup hook
    expect(exitCode).toBe(1);

    // A worker whose poller callback ends it with process.exit() also tears down cleanly.
    const exiting = new Worker(
      `
      const sys = require('node-gyp-build')(${JSON.stringify(packageRoot)});
      const fd = sys.eventfd(1, sys.fdConstants.EFD_NONBLOCK);
      new sys.Poller(fd, () => process.exit(7), true).start(sys.pollConstants.UV_READABLE);
    `,
      { eval: true },
    );
    const [code7] = (await once(exiting, 'exit')) as [number];
    expect(code7).toBe(7);
  });

  it('an exception thrown by the callback becomes an uncaughtException', async () => {
    const worker = new Worker(
      `
      const { parentPort } = require('node:worker_threads');
      const sys = require('node-gyp-build')(${JSON.stringify(packageRoot)});
      const fd = sys.eventfd(0, sys.fdConstants.EFD_NONBLOCK);
      const poller = new sys.Poller(fd, (e, ev, value) => { throw new Error('boom ' + value); }, true);
      process.on('uncaughtException', (error) => {
        poller.close();
        sys.close(fd);
        parentPort.postMessage(error.message);
      });
      poller.start(sys.pollConstants.UV_READABLE);
      sys.write8(fd, 3n);
    `,
      { eval: true },
    );
    // Listened for from the start: Node 24 may emit 'exit' before the last 'message' is handled.
    const exited = once(worker, 'exit');
    const [message] = (await once(worker, 'message')) as [string];
    expect(message).toBe('boom 3');
    await exited;
  });
});
