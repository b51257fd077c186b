/**
 * The vCPU worker's exit handler (loaded by @rxvmm/kvm-linux's VcpuRunner
 * INSIDE the worker thread): it owns the virtio-mmio register file, so an
 * MMIO exit is answered right here with no thread hop, and it recognises the
 * guest's HELLO and DONE ports. Without an ioeventfd, a QueueNotify exit lands
 * here and is turned into a write of the same kick eventfd the back-end reads.
 */
import { defineVcpuHandler, setupLongMode } from '@rxvmm/kvm-linux';
import { write8 } from '@rxvmm/sys';
import { DONE_PORT, HELLO_PORT } from '../guest/abi.js';
import { awaitDescription } from './description.js';
import { DeviceHost } from './device-host.js';
import { MMIO_BASE, MMIO_SIZE, nowMs, SharedState, SharedTime, SharedWord } from './layout.js';

export interface ExitHandlerData {
  entry: bigint;
  stack: bigint;
  bootInfo: bigint;
  /** The device description, published by the main thread once the device is open (description.ts). */
  description: SharedArrayBuffer;
  ramSize: number;
  /** SharedState; its kickFd word holds the kick eventfd once the description is published. */
  shared: SharedArrayBuffer;
}

let host: DeviceHost | undefined;
let shared: SharedState | undefined;
let makeHost: (() => DeviceHost | undefined) | undefined;

/** The register file, made at the guest's first access to the window (waiting for the description). */
function deviceHost(): DeviceHost | undefined {
  if (!host && makeHost) {
    host = makeHost();
    makeHost = undefined;
  }
  return host;
}

export default defineVcpuHandler<ExitHandlerData>({
  setup(ctx) {
    const d = ctx.data;
    setupLongMode(ctx, ctx.vcpu, { entry: d.entry, stack: d.stack, regs: { rdi: d.bootInfo } });
    shared = new SharedState(d.shared);
    makeHost = () => {
      const description = awaitDescription(d.description);
      if (!description) return undefined; // the VMM could not open the device; it is stopping this vCPU
      const kickFd = shared?.get(SharedWord.kickFd) ?? -1;
      return new DeviceHost({
        ...description,
        ramSize: d.ramSize,
        shared: d.shared,
        emit: (event) => ctx.post(event),
        kick: () => write8(kickFd, 1n),
      });
    };
  },
  onExit(exit) {
    if (exit.kind === 'mmio') {
      const inWindow = exit.addr >= MMIO_BASE && exit.addr < MMIO_BASE + BigInt(MMIO_SIZE);
      const served = inWindow && (deviceHost()?.handleMmio(exit.addr, exit.isWrite, exit.data) ?? false);
      if (!served && !exit.isWrite) exit.data.fill(0xff);
      return;
    }
    if (exit.kind === 'io') {
      if (exit.direction === 'out' && exit.port === HELLO_PORT) {
        if (shared && shared.times[SharedTime.hello] === 0) shared.times[SharedTime.hello] = nowMs();
        return;
      }
      if (exit.direction === 'out' && exit.port === DONE_PORT) {
        if (shared) shared.times[SharedTime.done] = nowMs();
        return 'stop';
      }
      if (exit.direction === 'in') exit.data.fill(0xff); // nothing there
      return;
    }
    return undefined; // hlt (no irqchip), shutdown, errors: the runner's default (stop)
  },
});
