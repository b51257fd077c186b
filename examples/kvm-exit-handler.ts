/**
 * The exit handler of kvm-vcpu-runner.ts. `VcpuRunner` imports this module inside the vCPU's
 * worker thread, so each exit is answered there with no thread hop. `setup` runs once on that
 * thread before the first KVM_RUN (KVM wants vCPU ioctls on the thread that created the vCPU).
 */
import { defineVcpuHandler, enableLocalApic, setupIdt, setupLongMode } from '@rxvmm/kvm-linux';

/** What the VMM tells the handler (`data`, structured-cloned into the worker). */
export interface GuestLayout {
  entry: bigint;
  stack: bigint;
  /** Interrupt handler code by vector (the spurious vector's included). */
  handlers: Record<number, bigint>;
  reportPort: number;
  donePort: number;
}

export default defineVcpuHandler<GuestLayout>({
  setup(ctx) {
    setupLongMode(ctx, ctx.vcpu, { entry: ctx.data.entry, stack: ctx.data.stack }); // 64-bit, identity-mapped
    setupIdt(ctx, ctx.vcpu, { handlers: ctx.data.handlers }); // the guest needs no lidt of its own
    enableLocalApic(ctx.vcpu); // SVR enable: MSIs reach the guest
  },
  onExit(exit, ctx) {
    if (exit.kind === 'io' && exit.direction === 'out' && exit.port === ctx.data.reportPort) {
      ctx.post(new DataView(exit.data.buffer, exit.data.byteOffset, 4).getUint32(0, true));
      return;
    }
    if (exit.kind === 'io' && exit.port === ctx.data.donePort) return 'stop';
    ctx.post({ unexpected: exit.kind });
    return 'stop';
  },
});
