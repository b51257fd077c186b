// VcpuHandler for the real-guest tests (plain JS: imported inside the vCPU's
// worker, which runs built code). The main thread loaded the guest into RAM;
// here the vCPU enters it in long mode, and every exit is answered in this
// thread: `in` and MMIO reads get ctx.data's answers, reports and other
// writes are posted to the main thread, DONE stops the run.
import { setupLongMode } from '../../dist/index.js';

function le(data) {
  let v = 0n;
  for (let i = data.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[i]);
  return v;
}

function put(data, value) {
  let v = BigInt(value);
  for (let i = 0; i < data.length; i++) {
    data[i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

export default {
  setup(ctx) {
    setupLongMode(ctx, ctx.vcpu, { entry: ctx.data.entry, stack: ctx.data.stack });
  },
  onExit(exit, ctx) {
    const { reportPort, donePort } = ctx.data;
    if (exit.kind === 'io') {
      if (exit.direction === 'out' && exit.port === donePort) return 'stop';
      if (exit.direction === 'out' && exit.port === reportPort) {
        ctx.post({ kind: 'report', value: Number(le(exit.data)) });
        return;
      }
      if (exit.direction === 'in') put(exit.data, ctx.data.pioAnswer ?? 0n);
      ctx.post({
        kind: 'io',
        direction: exit.direction,
        port: exit.port,
        size: exit.size,
        value: le(exit.data),
      });
      return;
    }
    if (exit.kind === 'mmio') {
      if (!exit.isWrite) put(exit.data, ctx.data.mmioAnswer ?? 0n);
      ctx.post({ kind: 'mmio', isWrite: exit.isWrite, addr: exit.addr, len: exit.len, value: le(exit.data) });
      return;
    }
    ctx.post({ kind: 'unexpected', exit });
    return 'stop';
  },
};
