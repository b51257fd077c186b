// The other thread of bench/run.mjs: the same loop as the C program's worker,
// through @rxvmm/sys (write(2) of A, then poll(2)+read(2) of B), so both sides
// differ only in who waits on A: epoll in C, a signals$ subscriber here.
import { workerData } from 'node:worker_threads';
import { POLLIN, pollWait, tryRead8, write8 } from '@rxvmm/sys';

const { fdA, fdB, fdGo, samples, signals, warmup, stamp } = workerData;
const stamps = new BigInt64Array(stamp);

function waitRead(fd) {
  for (;;) {
    pollWait(fd, POLLIN, -1);
    const value = tryRead8(fd);
    if (value !== null) return value;
  }
}

for (let i = 0; i < warmup + samples; i++) {
  Atomics.store(stamps, 0, process.hrtime.bigint());
  write8(fdA, 1n);
  waitRead(fdB);
}
waitRead(fdGo); // "go": the main thread has started its clock
for (let i = 0; i < signals; i++) write8(fdA, 1n);
