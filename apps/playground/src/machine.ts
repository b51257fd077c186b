/**
 * The playground machine: a SoftKvm VM with one vCPU running the guest of
 * guest.ts, a virtio-mmio transport in the VMM answering its register exits,
 * and the echo device (`EchoDevice` of `@rxvmm/virtio-ring/testing`) hosted by
 * a `DeviceServer`, whose `serveQueue` loop pops the guest's chains. The
 * doorbell and the interrupt are wired as `rxvmm-demo` wires them
 * (apps/demo-vmm/src/vmm/signals.ts):
 *
 * - ioeventfd on: KVM_IOEVENTFD on QueueNotify (4 bytes, datamatch 0) signals
 *   the kick eventfd inside `run()`, no exit; its `signals$` notifies the
 *   device (`transport.notifyQueue(0)`). Off: the write is an MMIO exit and
 *   the VMM's register file notifies the device.
 * - irqfd on: each used-buffer interrupt the transport raises writes the call
 *   eventfd, and SoftKvm's irqfd injects the MSI routed on GSI 24. Off: the
 *   VMM injects it with KVM_IRQ_LINE on the same GSI (`vm.setIrqLine`).
 *
 * Every hop from one component to the next goes through a `Stepper`, so the
 * page can run, pause and step the machine; the hops themselves are the
 * libraries' own calls. The machine reports each hop as a `TraceEvent`.
 */
import { SoftEventFd } from '@rxvmm/eventfd';
import { GuestMemory } from '@rxvmm/guest-memory';
import { IOEVENTFD_FLAG_DATAMATCH, IOEVENTFD_FLAG_DEASSIGN, IRQFD_FLAG_DEASSIGN } from '@rxvmm/kvm';
import { SoftKvm, type SoftVcpu, type SoftVm } from '@rxvmm/kvm-soft';
import { VirtioMmioTransport } from '@rxvmm/virtio-mmio';
import {
  type ChainDevice,
  type DescriptorChain,
  DeviceServer,
  readSegments,
  type Segment,
} from '@rxvmm/virtio-ring';
import { EchoDevice } from '@rxvmm/virtio-ring/testing';
import { type GuestProbe, playgroundGuest, requestText } from './guest.js';
import {
  DEVICE_GSI,
  DEVICE_MSI,
  DEVICE_VECTOR,
  Mailbox,
  MMIO_BASE,
  MMIO_SIZE,
  mailboxAddr,
  QUEUE_NOTIFY_ADDR,
  RAM_SIZE,
  Reg,
  TICK_MSI,
  TICK_VECTOR,
} from './layout.js';
import { Stepper } from './stepper.js';
import {
  type Counters,
  type ExitCause,
  emptyCounters,
  type RequestRecord,
  type Stage,
  type TraceEvent,
} from './trace.js';

export interface MachineOptions {
  /** Absorb the doorbell with an ioeventfd (default true). */
  ioeventfd?: boolean;
  /** Inject the device interrupt with an irqfd (default true). */
  irqfd?: boolean;
  /** How many requests to remember for `requests` (default 64). */
  keepRequests?: number;
}

const hex = (v: number | bigint) => `0x${v.toString(16)}`;

/** Text of a chain's segments (at most 256 bytes), for the page. */
function segmentsText(memory: GuestMemory, segments: readonly Segment[], len: number): string {
  const bytes = new Uint8Array(Math.min(len, 256));
  readSegments(memory, segments, bytes);
  return new TextDecoder().decode(bytes);
}

/**
 * The echo device as the machine hosts it: each chain is served by
 * `EchoDevice` at once, and its completion is handed to the stepper, so "the
 * device completes the chain" is a hop of its own (an async completion, which
 * `serveQueue` supports as any device's).
 */
class SteppedDevice implements ChainDevice {
  readonly deviceType: number;
  readonly features: bigint;
  readonly queueMaxSizes: readonly number[];
  readonly configSize: number;

  constructor(
    readonly inner: EchoDevice,
    readonly hooks: {
      popped(chain: DescriptorChain, memory: GuestMemory): void;
      completeLater(chain: DescriptorChain, written: number, complete: () => void): void;
    },
  ) {
    this.deviceType = inner.deviceType;
    this.features = inner.features;
    this.queueMaxSizes = inner.queueMaxSizes;
    this.configSize = inner.configSize;
  }

  readConfig(offset: number, data: Uint8Array): void {
    this.inner.readConfig(offset, data);
  }

  writeConfig(offset: number, data: Uint8Array): void {
    this.inner.writeConfig(offset, data);
  }

  async handleChain(chain: DescriptorChain, memory: GuestMemory): Promise<number> {
    this.hooks.popped(chain, memory);
    const written = await this.inner.handleChain(chain, memory);
    return new Promise<number>((resolve) => this.hooks.completeLater(chain, written, () => resolve(written)));
  }

  reset(): void {
    this.inner.reset();
  }
}

export class PlaygroundMachine {
  readonly stepper = new Stepper();
  readonly counters: Counters = emptyCounters();
  /** The most recent requests, oldest first. */
  readonly requests: RequestRecord[] = [];
  readonly kvm = new SoftKvm();
  readonly vm: SoftVm;
  readonly vcpu: SoftVcpu;
  readonly memory: GuestMemory;
  readonly transport: VirtioMmioTransport;
  readonly device: EchoDevice;
  readonly kick = new SoftEventFd();
  readonly call = new SoftEventFd();
  /** Why the machine stopped, if it did. */
  failure: string | undefined;

  #ioeventfd = false;
  #irqfd = false;
  #granted = 0;
  #seq = 0;
  #current = -1;
  #ready = false;
  #closed = false;
  #listeners: ((event: TraceEvent) => void)[] = [];
  #idleWaiters: (() => void)[] = [];
  readonly #keep: number;
  readonly #unsubscribe: (() => void)[] = [];

  constructor(options: MachineOptions = {}) {
    this.#keep = options.keepRequests ?? 64;
    this.vm = this.kvm.createVm();
    this.vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: RAM_SIZE });
    this.memory = new GuestMemory(this.vm.memoryRegions());
    this.vm.createIrqChip();
    this.vm.setGsiRouting([{ gsi: DEVICE_GSI, type: 'msi', ...DEVICE_MSI }]);

    this.device = new EchoDevice({ queueSize: 64 });
    const stepped = new SteppedDevice(this.device, {
      popped: (chain, memory) => {
        const text = segmentsText(memory, chain.readable, chain.readableLength);
        this.#emit(
          'pop',
          `serveQueue pops chain ${chain.head} (${chain.readableLength} bytes to read, ${chain.writableLength} to write): "${text}"`,
        );
      },
      completeLater: (chain, written, complete) =>
        this.stepper.enqueue('the device completes the chain', () => {
          complete();
          this.counters.chains++;
          const reply = segmentsText(this.memory, chain.writable, written);
          this.#emit(
            'used',
            `the echo device wrote ${written} bytes ("${reply}"); serveQueue puts the chain in the used ring`,
          );
        }),
    });
    this.transport = new VirtioMmioTransport(new DeviceServer(stepped, this.memory), {
      isValidRange: (addr, len) => this.memory.isValidRange(addr, len),
    });
    this.#unsubscribe.push(
      this.transport.on('notify', (queue) => {
        this.counters.kicks++;
        this.#emit(
          'kick',
          `the device is notified: queue ${queue} has new buffers (DeviceServer kicks its serveQueue loop)`,
        );
      }),
      this.transport.on('interrupt', ({ bits, status }) => {
        if ((bits & 1) === 0) return;
        this.#emit(
          'call',
          `the device signals a used buffer: InterruptStatus = ${status}, the transport raises the interrupt`,
        );
        this.stepper.enqueue(
          this.#irqfd ? 'the call eventfd fires the irqfd' : 'the VMM injects the interrupt',
          () => this.#inject(),
        );
      }),
      this.transport.on('needsReset', ({ reason }) => this.#fail(`the device needs a reset: ${reason}`)),
    );

    // The kernel side of the kick eventfd, as a poll would see it: the ioeventfd signals it
    // synchronously, inside the vCPU's run(), when it absorbs a doorbell.
    const unwatch = this.kick.watch({
      readable: () => {
        this.counters.absorbed++;
        this.#recordRequest((r) => {
          r.absorbed = true;
        });
        this.#emit(
          'ioeventfd',
          `the ioeventfd on ${hex(QUEUE_NOTIFY_ADDR)} matched: the kick eventfd is signalled inside run(), no exit`,
        );
      },
    });
    // Its user side: signals$ delivers on a later turn; the VMM passes the kick to the device.
    const kicks = this.kick.signals$.subscribe(() =>
      this.stepper.enqueue('the kick eventfd wakes the device', () => this.transport.notifyQueue(0)),
    );
    this.#unsubscribe.push(unwatch, () => kicks.unsubscribe());

    this.setIoeventfd(options.ioeventfd ?? true);
    this.setIrqfd(options.irqfd ?? true);

    this.vcpu = this.vm.createSoftVcpu(0);
    this.vcpu.load(playgroundGuest(this.#probe));
    this.stepper.onAction = () => this.#checkIdle();
    this.stepper.onError = (error) => this.#fail(error instanceof Error ? error.message : String(error));
    this.#scheduleRun();
  }

  /** Boots the machine: runs the driver's set-up until the guest waits for its first request. */
  static async boot(options: MachineOptions = {}): Promise<PlaygroundMachine> {
    const machine = new PlaygroundMachine(options);
    machine.stepper.run();
    await machine.whenIdle();
    machine.stepper.pause();
    if (machine.failure) throw new Error(machine.failure);
    return machine;
  }

  get ioeventfd(): boolean {
    return this.#ioeventfd;
  }

  get irqfd(): boolean {
    return this.#irqfd;
  }

  /** Requests granted so far. */
  get granted(): number {
    return this.#granted;
  }

  /** Nothing queued and the guest asleep waiting for a grant (or stopped). */
  get idle(): boolean {
    if (this.stepper.pending > 0) return false;
    if (this.failure !== undefined) return true;
    // Asleep waiting, and every grant used (a tick just sent has not woken it yet).
    return this.#waitingForGrant() && this.memory.readU32(mailboxAddr(Mailbox.sent)) >= this.#granted;
  }

  /** KVM_IOEVENTFD on QueueNotify (assign, or DEASSIGN with the same arguments). */
  setIoeventfd(on: boolean): void {
    if (on === this.#ioeventfd) return;
    const flags = IOEVENTFD_FLAG_DATAMATCH | (on ? 0 : IOEVENTFD_FLAG_DEASSIGN);
    this.vm.ioeventfd({ addr: QUEUE_NOTIFY_ADDR, len: 4, fd: this.kick, datamatch: 0n, flags });
    this.#ioeventfd = on;
  }

  /** KVM_IRQFD on the device GSI (assign, or DEASSIGN). */
  setIrqfd(on: boolean): void {
    if (on === this.#irqfd) return;
    this.vm.irqfd({ fd: this.call, gsi: DEVICE_GSI, flags: on ? 0 : IRQFD_FLAG_DEASSIGN });
    this.#irqfd = on;
  }

  /**
   * Lets the guest send `count` more requests: the VMM writes the mailbox in
   * guest RAM and, if the guest sleeps waiting for it, sends a tick MSI
   * (KVM_SIGNAL_MSI) to wake it.
   */
  grant(count = 1): void {
    if (this.#closed || this.failure) return;
    this.#granted += count;
    this.counters.grants += count;
    this.memory.writeU32(mailboxAddr(Mailbox.granted), this.#granted);
    const asleep = this.#waitingForGrant();
    if (asleep) {
      this.counters.ticks++;
      this.vm.signalMsi(TICK_MSI);
    }
    this.#emit(
      'grant',
      `the VMM lets the guest send request ${this.#granted - 1}${asleep ? ` and wakes it with a tick (MSI vector ${hex(TICK_VECTOR)})` : ''}`,
      { request: this.#granted - 1, skipPath: true },
    );
  }

  /**
   * One step: the next queued hop, or, when nothing is queued and the guest
   * waits, a grant of the next request. False when there was nothing to do.
   */
  step(): boolean {
    if (this.stepper.pending > 0) return this.stepper.step();
    if (!this.idle || this.failure) return false;
    this.grant(1);
    return true;
  }

  /** Resolves when the machine is idle (see `idle`). */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Calls `listener` with every later event; returns the unsubscribe function. */
  onEvent(listener: (event: TraceEvent) => void): () => void {
    this.#listeners.push(listener);
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.stepper.clear();
    for (const undo of this.#unsubscribe.splice(0)) undo();
    this.transport.device.reset();
    this.vcpu.close();
    this.kick.close();
    this.call.close();
    this.vm.close();
    this.kvm.close();
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  readonly #probe: GuestProbe = {
    doorbell: (request) => {
      this.#current = request;
      this.counters.doorbells++;
      this.counters.sent = request + 1;
      this.requests.push({
        id: request,
        path: [],
        exits: 0,
        absorbed: false,
        injectedBy: undefined,
        ok: undefined,
        reply: undefined,
      });
      if (this.requests.length > this.#keep) this.requests.shift();
      this.#emit(
        'doorbell',
        `the guest makes "${requestText(request)}" available and writes 0 to QueueNotify (${hex(QUEUE_NOTIFY_ADDR)})`,
      );
    },
    interrupt: (vector) => {
      if (vector !== DEVICE_VECTOR) return; // a tick: the grant's wake-up, not part of a request
      this.counters.guestInterrupts++;
      this.#emit(
        'interrupt',
        `the guest takes vector ${hex(vector)}: its handler reads InterruptStatus and acknowledges`,
      );
    },
    verified: (request, ok, reply) => {
      if (ok) this.counters.verified++;
      else this.counters.failed++;
      this.#recordRequest((r) => {
        r.ok = ok;
        r.reply = reply;
      });
      this.#emit(
        'verified',
        `the guest checks the reply to request ${request}, "${reply}": ${ok ? 'right' : 'WRONG'}`,
      );
    },
  };

  #waitingForGrant(): boolean {
    return this.#ready && this.memory.readU32(mailboxAddr(Mailbox.waitingForGrant)) === 1 && this.vcpu.halted;
  }

  #scheduleRun(): void {
    if (this.#closed || this.failure) return;
    this.stepper.enqueue('the vCPU runs', () => this.#runOnce());
  }

  /** One KVM_RUN: the guest runs until it needs the VMM or sleeps. */
  #runOnce(): void {
    const exit = this.vcpu.run();
    if (!this.#ready && this.memory.readU32(mailboxAddr(Mailbox.ready)) === 1) this.#ready = true;
    switch (exit.kind) {
      case 'intr':
        this.counters.sleeps++;
        this.#emit(
          'sleep',
          'the guest sleeps (hlt): run() returns and the VMM loop waits until an interrupt makes the vCPU runnable',
          {
            skipPath: true,
          },
        );
        this.vcpu.whenRunnable().then(() => this.#scheduleRun());
        return;
      case 'mmio': {
        const inWindow = exit.addr >= MMIO_BASE && exit.addr < MMIO_BASE + BigInt(MMIO_SIZE);
        const offset = Number(exit.addr - MMIO_BASE);
        const cause = this.#exitCause(inWindow ? offset : -1, exit.isWrite);
        this.#countExit(cause);
        const value = () => exit.data.reduceRight((v, b) => v * 256 + b, 0);
        const report = () =>
          this.#emit('exit', this.#describeExit(cause, offset, exit.isWrite, value()), { exit: cause });
        // A write is reported before the register file acts on it (a doorbell notifies the
        // device at once), a read after it has the answer.
        if (exit.isWrite) report();
        if (inWindow) this.transport.handleMmio(offset, exit.isWrite, exit.data);
        else if (!exit.isWrite) exit.data.fill(0xff);
        if (!exit.isWrite) report();
        this.#scheduleRun();
        return;
      }
      case 'io':
        this.#countExit('other');
        if (exit.direction === 'in') exit.data.fill(0xff);
        this.#emit('exit', `PIO exit on port ${hex(exit.port)}: nothing there`, { exit: 'other' });
        this.#scheduleRun();
        return;
      case 'shutdown': {
        const setup = this.memory.readU32(mailboxAddr(Mailbox.setupError));
        this.#fail(
          setup ? `the driver gave up setting the device up (step ${setup})` : 'the guest shut down',
        );
        return;
      }
      default:
        this.#fail(
          exit.kind === 'internal-error'
            ? `the guest program failed: ${String(this.vcpu.lastError)}`
            : `unexpected exit ${exit.kind}`,
        );
    }
  }

  #exitCause(offset: number, isWrite: boolean): ExitCause {
    if (!this.#ready) return 'setup';
    if (offset === Reg.queueNotify && isWrite) return 'doorbell';
    if (offset === Reg.interruptStatus && !isWrite) return 'interrupt-status';
    if (offset === Reg.interruptAck && isWrite) return 'interrupt-ack';
    return 'other';
  }

  #countExit(cause: ExitCause): void {
    const c = this.counters;
    c.exits++;
    if (cause === 'setup') {
      c.setupExits++;
      return;
    }
    c.requestExits++;
    if (cause === 'doorbell') c.doorbellExits++;
    else if (cause === 'interrupt-status') c.interruptStatusExits++;
    else if (cause === 'interrupt-ack') c.interruptAckExits++;
    this.#recordRequest((r) => {
      r.exits++;
    });
  }

  #describeExit(cause: ExitCause, offset: number, isWrite: boolean, value: number): string {
    switch (cause) {
      case 'doorbell':
        return 'MMIO exit: the doorbell write reaches the VMM, whose register file (VirtioMmioTransport) notifies the device';
      case 'interrupt-status':
        return `MMIO exit: the guest reads InterruptStatus (${value}), answered by the VMM's register file`;
      case 'interrupt-ack':
        return `MMIO exit: the guest writes ${value} to InterruptACK, handled by the VMM's register file`;
      case 'setup':
        return `MMIO exit (driver set-up): ${isWrite ? `write ${hex(value)} to` : `read ${hex(value)} from`} register ${hex(offset)}`;
      default:
        return `MMIO exit: ${isWrite ? 'write to' : 'read of'} register ${hex(offset)}`;
    }
  }

  /** Raises the device interrupt the way the options say (signals.ts of rxvmm-demo). */
  #inject(): void {
    if (this.#irqfd) {
      this.counters.irqfdInjections++;
      this.#recordRequest((r) => {
        r.injectedBy = 'irqfd';
      });
      this.call.write(1n);
      this.#emit(
        'irqfd',
        `the call eventfd is written: the irqfd on GSI ${DEVICE_GSI} injects the MSI (vector ${hex(DEVICE_VECTOR)}), no VMM code on the way`,
      );
    } else {
      this.counters.vmmInjections++;
      this.#recordRequest((r) => {
        r.injectedBy = 'vmm';
      });
      // On the MSI-routed GSI, level 1 delivers the message and level 0 is a no-op.
      this.vm.setIrqLine(DEVICE_GSI, true);
      this.vm.setIrqLine(DEVICE_GSI, false);
      this.#emit(
        'irq-line',
        `irqfd off: the VMM injects the interrupt itself with KVM_IRQ_LINE on GSI ${DEVICE_GSI}`,
      );
    }
  }

  #request(): RequestRecord | undefined {
    const last = this.requests[this.requests.length - 1];
    return last !== undefined && last.id === this.#current ? last : undefined;
  }

  #recordRequest(update: (r: RequestRecord) => void): void {
    const r = this.#request();
    if (r !== undefined) update(r);
  }

  #emit(
    stage: Stage,
    text: string,
    options: { exit?: ExitCause; request?: number; skipPath?: boolean } = {},
  ): void {
    const request = options.request ?? (this.#ready ? this.#current : -1);
    if (!options.skipPath && request === this.#current) this.#request()?.path.push(stage);
    const event: TraceEvent =
      options.exit === undefined
        ? { seq: ++this.#seq, request, stage, text }
        : { seq: ++this.#seq, request, stage, text, exit: options.exit };
    for (const listener of this.#listeners) listener(event);
  }

  #fail(reason: string): void {
    if (this.failure) return;
    this.failure = reason;
    this.stepper.pause();
    this.#emit('error', reason);
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  #checkIdle(): void {
    if (this.#idleWaiters.length === 0 || !this.idle) return;
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }
}
