/**
 * The vCPU worker's exit handler (loaded by @rxvmm/kvm-linux's VcpuRunner
 * INSIDE the worker thread): it owns the virtio-mmio register file, so an
 * MMIO exit is answered right here with no thread hop, and it recognises the
 * guest's HELLO and DONE ports. Without an ioeventfd, a QueueNotify exit lands
 * here and is turned into a write of the same kick eventfd the back-end reads.
 */
import type { VcpuExit } from '@rxvmm/kvm';
import { defineVcpuHandler, setupLongMode } from '@rxvmm/kvm-linux';
import { write8 } from '@rxvmm/sys';
import { DONE_PORT, HELLO_PORT } from '../guest/abi.js';
import { awaitDescription } from './description.js';
import type { DeviceHost } from './device-host.js';
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
/** Set up in `setup`; resolves to the register file at the guest's first access to the window. */
let makeHost: (() => Promise<DeviceHost | undefined>) | undefined;

const MMIO_END = MMIO_BASE + BigInt(MMIO_SIZE);

function inWindow(addr: bigint): boolean {
  return addr >= MMIO_BASE && addr < MMIO_END;
}

function serveMmio(exit: Extract<VcpuExit, { kind: 'mmio' }>): void {
  const served = inWindow(exit.addr) && (host?.handleMmio(exit.addr, exit.isWrite, exit.data) ?? false);
  if (!served && !exit.isWrite) exit.data.fill(0xff);
}

export default defineVcpuHandler<ExitHandlerData>({
  setup(ctx) {
    const d = ctx.data;
    setupLongMode(ctx, ctx.vcpu, { entry: d.entry, stack: d.stack, regs: { rdi: d.bootInfo } });
    const state = new SharedState(d.shared);
    shared = state;
    // The register file (virtio-mmio) is needed at the guest's first access to the device, not at its
    // first instruction: it loads then (the worker's event loop turns while onExit's promise is
    // pending), when the guest waits for the main thread's device description anyway.
    makeHost = async () => {
      const { DeviceHost } = await import('./device-host.js');
      const description = awaitDescription(d.description);
      if (!description) return undefined; // the VMM could not open the device; it is stopping this vCPU
      const kickFd = state.get(SharedWord.kickFd);
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
      if (!host && makeHost && inWindow(exit.addr)) {
        // Once: the runner keeps kvm_run (and exit.data) as is until this promise settles.
        const make = makeHost;
        makeHost = undefined;
        return make().then((made) => {
          host = made;
          serveMmio(exit);
        });
      }
      serveMmio(exit);
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
