// VcpuHandler for the benchmarks, loaded inside the vCPU's worker. Times the
// run from the end of setup (just before the first KVM_RUN) to DONE, as the C
// reference does around its KVM_RUN loop, and posts the figures.
// - MMIO write exits at ctx.data.doorbell: counted (the "doorbell handler").
// - REPORT exits: bump ctx.data.reports[0] and wake the main thread (irqfd
//   round trip; the C reference does the same with a futex).
import { setupLongMode } from '../../dist/index.js';

let t0 = 0;
let doorbells = 0;
let reports;

export default {
  setup(ctx) {
    setupLongMode(ctx, ctx.vcpu, { entry: ctx.data.entry, stack: ctx.data.stack });
    reports = ctx.data.reports ? new Int32Array(ctx.data.reports) : undefined;
    t0 = performance.now();
  },
  onExit(exit, ctx) {
    if (exit.kind === 'mmio' && exit.isWrite && exit.addr === ctx.data.doorbell) {
      doorbells++;
      return;
    }
    if (exit.kind === 'io' && exit.direction === 'out') {
      if (exit.port === ctx.data.reportPort) {
        if (reports) {
          Atomics.add(reports, 0, 1);
          Atomics.notify(reports, 0);
        }
        return;
      }
      if (exit.port === ctx.data.donePort) {
        ctx.post({ elapsedMs: performance.now() - t0, doorbells });
        return 'stop';
      }
    }
    ctx.post({ unexpected: exit.kind });
    return 'stop';
  },
};
