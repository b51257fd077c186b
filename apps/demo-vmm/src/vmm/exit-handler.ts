/**
 * The vCPU worker's exit handler (loaded by @rxvmm/kvm-linux's VcpuRunner
 * INSIDE the worker thread): it owns the virtio-mmio register file, so an
 * MMIO exit is answered right here with no thread hop, and it recognises the
 * guest's HELLO and DONE ports. Without an ioeventfd, a QueueNotify exit lands
 * here and is turned into a write of the same kick eventfd the back-end reads.
 */
import type { VcpuExit } from '@rxvmm/kvm';
import { defineVcpuHandler } from '@rxvmm/kvm-linux';
import { write8 } from '@rxvmm/sys';
import type { VirtioMmioTransportState } from '@rxvmm/virtio-mmio';
import { awaitDescription } from './description.js';
import type { DeviceHost, HostEvent } from './device-host.js';
import { answerDone, answerHello, inDeviceWindow, noteDeviceAccess } from './guest-ports.js';
import { SharedState, SharedWord } from './layout.js';

/**
 * What the handler gets (`ctx.data`). The vCPU's registers are not here: a booting guest starts on
 * the main thread (kvm-machine.ts's early run), a restored one from its snapshot.
 */
export interface ExitHandlerData {
  /** The device description, published by the main thread once the device is open (description.ts). */
  description: SharedArrayBuffer;
  ramSize: number;
  /** SharedState; its kickFd word holds the kick eventfd once the description is published. */
  shared: SharedArrayBuffer;
  /**
   * A restored snapshot's register file: the register file is made at once from it (not at the
   * guest's first access), which activates the device again, so rings resume and the guest, in
   * the middle of its work, need not touch a register first.
   */
  restoreTransport?: VirtioMmioTransportState;
}

/**
 * Messages the main thread sends this handler (`runner.post`): the register file's state (for a
 * snapshot); and, after a restore, "listening": the events of the restored register file (its
 * activation) were held until the main thread listens, since they happen during `setup`.
 */
export type ExitHandlerRequest = { type: 'transport-state' } | { type: 'listening' };
/** The answer to 'transport-state' (posted while the vCPU is paused for a snapshot). */
export interface TransportStateReply {
  type: 'transport-state';
  state: VirtioMmioTransportState | null;
}

let host: DeviceHost | undefined;
/** Events held until the main thread listens (a restore makes the register file during setup). */
let held: HostEvent[] | undefined;
let shared: SharedState | undefined;
/** Set up in `setup`; resolves to the register file at the guest's first access to the window. */
let makeHost: (() => Promise<DeviceHost | undefined>) | undefined;

function serveMmio(exit: Extract<VcpuExit, { kind: 'mmio' }>): void {
  const served = inDeviceWindow(exit.addr) && (host?.handleMmio(exit.addr, exit.isWrite, exit.data) ?? false);
  if (!served && !exit.isWrite) exit.data.fill(0xff);
}

export default defineVcpuHandler<ExitHandlerData>({
  setup(ctx) {
    const d = ctx.data;
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
        emit: (event) => (held ? held.push(event) : ctx.post(event)),
        kick: () => write8(kickFd, 1n),
        ...(d.restoreTransport ? { transportState: d.restoreTransport } : {}),
      });
    };
    if (d.restoreTransport) {
      held = [];
      const make = makeHost;
      makeHost = undefined;
      return make().then((made) => {
        host = made;
      });
    }
  },
  onMessage(message, ctx) {
    if ((message as ExitHandlerRequest).type === 'listening') {
      const events = held ?? [];
      held = undefined;
      for (const event of events) ctx.post(event);
    }
    if ((message as ExitHandlerRequest).type === 'transport-state') {
      const reply: TransportStateReply = { type: 'transport-state', state: host?.transport.state() ?? null };
      ctx.post(reply);
    }
  },
  onExit(exit) {
    if (exit.kind === 'mmio') {
      if (!host && makeHost && inDeviceWindow(exit.addr)) {
        if (shared) noteDeviceAccess(exit.addr, shared);
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
      // HELLO usually reached the main thread's early run; here when this worker was ready first.
      if (shared && answerHello(exit, shared)) return;
      if (shared && answerDone(exit, shared)) return 'stop';
      if (exit.direction === 'in') exit.data.fill(0xff); // nothing there
      return;
    }
    return undefined; // hlt (no irqchip), shutdown, errors: the runner's default (stop)
  },
});
