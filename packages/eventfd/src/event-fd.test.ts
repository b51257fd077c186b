// What only the kernel EventFd has: a real fd (visible in /proc, usable by other
// threads and by raw syscalls), the kernel's EINVAL for short buffers, and
// waits that are woken by writes from other threads.

import { once } from 'node:events';
import { closeSync, existsSync, openSync, readFileSync, readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  EFD_CLOEXEC,
  EFD_SEMAPHORE,
  readRaw,
  close as sysClose,
  eventfd as sysEventfd,
  writeRaw,
} from '@rxvmm/sys';
import { first, firstValueFrom, scan } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { EFD_COUNTER_MAX } from './constants.js';
import { EventFd } from './event-fd.js';
import { nativeAvailable } from './native.js';

// The addon's package root, for workers that load it directly (eval workers cannot import TypeScript).
const sysRoot = fileURLToPath(new URL('../node_modules/@rxvmm/sys/', import.meta.url));

/** A worker thread that writes `values` to `fd` (raw write(2) through the addon), `delayMs` apart. */
function writerThread(fd: number, values: bigint[], delayMs: number): Promise<unknown> {
  const worker = new Worker(
    `
    const { workerData } = require('node:worker_threads');
    const sys = require('node-gyp-build')(workerData.sysRoot);
    const values = workerData.values.map(BigInt);
    let i = 0;
    const next = () => {
      if (i === values.length) return;
      sys.write8(workerData.fd, values[i++]);
      setTimeout(next, workerData.delayMs);
    };
    setTimeout(next, workerData.delayMs);
  `,
    { eval: true, workerData: { fd, values: values.map(String), delayMs, sysRoot } },
  );
  return once(worker, 'exit');
}

describe.skipIf(!nativeAvailable)('EventFd (kernel specifics)', () => {
  it('is a real eventfd: anon_inode in /proc, O_NONBLOCK|O_CLOEXEC, counter in fdinfo', () => {
    const efd = new EventFd({ initval: 77, semaphore: true });
    expect(readlinkSync(`/proc/self/fd/${efd.fd}`)).toBe('anon_inode:[eventfd]');
    const fdinfo = readFileSync(`/proc/self/fdinfo/${efd.fd}`, 'utf8');
    const flags = Number.parseInt(/flags:\s+(\d+)/.exec(fdinfo)?.[1] ?? '0', 8);
    expect(flags & 0o4000).toBe(0o4000); // O_NONBLOCK (always; see README)
    expect(flags & 0o2000000).toBe(0o2000000); // O_CLOEXEC
    expect(/eventfd-count:\s+([0-9a-f]+)/.exec(fdinfo)?.[1]).toMatch(/^0*4d$/);
    efd.close();
  });

  it('raw reads/writes under 8 bytes on its fd fail with the kernel EINVAL', () => {
    const efd = new EventFd({ initval: 1, nonblock: true });
    expect(() => readRaw(efd.fd, 4)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => writeRaw(efd.fd, new Uint8Array(7))).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(efd.read()).toBe(1n);
    efd.close();
  });

  it('signals$ and readAsync are woken by writes from another thread', async () => {
    const efd = new EventFd();
    // Three writes 5 ms apart: a loaded machine may coalesce some, the sum is what must arrive.
    const sum = firstValueFrom(
      efd.signals$.pipe(
        scan((total, v) => total + v, 0n),
        first((total) => total === 6n),
      ),
    );
    const writer = writerThread(efd.fd, [1n, 2n, 3n], 5);
    expect(await sum).toBe(6n);
    const writer2 = writerThread(efd.fd, [9n], 5);
    expect(await efd.readAsync()).toBe(9n);
    await Promise.all([writer, writer2]);
    efd.close();
  });

  it('a blocking sync read (nonblock: false) waits in the kernel for another thread', () => {
    const efd = new EventFd();
    const writer = writerThread(efd.fd, [5n], 20);
    expect(efd.read()).toBe(5n); // blocks this thread until the worker's write
    efd.close();
    return writer;
  });

  it('a parked writeAsync notices room made by another thread', async () => {
    const efd = new EventFd({ initval: 10 });
    const write = efd.writeAsync(EFD_COUNTER_MAX - 5n); // 10 + (max - 5) > max: must wait
    // Another thread drains the counter with a raw read.
    const drained = new Worker(
      `
      const { workerData } = require('node:worker_threads');
      const sys = require('node-gyp-build')(workerData.sysRoot);
      setTimeout(() => sys.read8(workerData.fd), 20);
    `,
      { eval: true, workerData: { fd: efd.fd, sysRoot } },
    );
    const exited = once(drained, 'exit');
    await write;
    await exited;
    expect(efd.read()).toBe(EFD_COUNTER_MAX - 5n);
    efd.close();
  });

  it('fromFd adopts an open eventfd: semaphore read from the kernel, O_NONBLOCK set, closed on close', async () => {
    const raw = sysEventfd(2, EFD_SEMAPHORE | EFD_CLOEXEC); // blocking, semaphore
    const efd = EventFd.fromFd(raw, { nonblock: true });
    expect(efd.fd).toBe(raw);
    expect(efd.semaphore).toBe(true);
    const flags = Number.parseInt(
      /flags:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${raw}`, 'utf8'))?.[1] ?? '0',
      8,
    );
    expect(flags & 0o4000).toBe(0o4000);
    expect(await firstValueFrom(efd.signals$)).toBe(1n);
    expect(efd.read()).toBe(1n);
    expect(() => efd.read()).toThrow(expect.objectContaining({ code: 'EAGAIN' }));
    efd.close();
    expect(() => readlinkSync(`/proc/self/fd/${raw}`)).toThrow();
  });

  it('fromFd: EBADF for a closed or invalid fd, EINVAL for a non-eventfd, TypeError for a non-number', () => {
    const raw = sysEventfd(0, EFD_CLOEXEC);
    sysClose(raw);
    expect(() => EventFd.fromFd(raw)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(() => EventFd.fromFd(-1)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(() => EventFd.fromFd(1.5)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    const file = openSync(fileURLToPath(import.meta.url), 'r');
    try {
      expect(() => EventFd.fromFd(file)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    } finally {
      closeSync(file);
    }
    expect(() => EventFd.fromFd('3' as unknown as number)).toThrow(TypeError);
  });

  it('a waiting readAsync does not block the event loop', async () => {
    const efd = new EventFd();
    const read = efd.readAsync();
    let ticks = 0;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (++ticks === 3) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
    efd.write(4n);
    expect(await read).toBe(4n);
    efd.close();
  });
});

// Worker-thread entry code needs built JavaScript (dist/), as everywhere in this repository.
const distIndex = new URL('../dist/index.js', import.meta.url);
const distBuilt = existsSync(distIndex);
if (!distBuilt)
  console.warn(
    'event-fd.test: dist/ not built (tsc -p tsconfig.build.json); worker-thread EventFd test skipped',
  );

describe.skipIf(!nativeAvailable || !distBuilt)('EventFd inside a worker thread', () => {
  it('polls on the worker loop, and the worker may be terminated with a live subscription', async () => {
    const worker = new Worker(
      `
      const { parentPort } = require('node:worker_threads');
      import(${JSON.stringify(distIndex.href)}).then(({ EventFd }) => {
        const efd = new EventFd();
        efd.signals$.subscribe((value) => parentPort.postMessage(String(value)));
        parentPort.postMessage(efd.fd);
      });
    `,
      { eval: true, execArgv: [] }, // built code: no `development` condition
    );
    const [fd] = (await once(worker, 'message')) as [number];
    const main = new EventFd(); // a second fd, so the worker's is not the only one open
    main.close();
    const received = once(worker, 'message');
    writeRaw(fd, new Uint8Array([12, 0, 0, 0, 0, 0, 0, 0])); // the main thread signals the worker's eventfd
    expect(await received).toEqual(['12']);
    expect(await worker.terminate()).toBe(1); // the active poller is torn down with the worker
  });
});
