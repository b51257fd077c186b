import { errnoError } from '@rxvmm/errno';
import type { IoBus } from '@rxvmm/io-bus';
import { MEM_READONLY, type Regs, type Sregs, type Vcpu, type VcpuExit } from '@rxvmm/kvm';
import {
  Guest,
  type GuestCpu,
  type GuestOp,
  type GuestProgram,
  type GuestStep,
  type InterruptHandler,
} from './guest.js';
import { LAPIC_BASE, LAPIC_SIZE, type LocalApic } from './irqchip/lapic.js';
import type { SoftIrqChip } from './irqchip/soft-irqchip.js';
import type { SoftMemory } from './memory.js';
import { cloneSregs, resetRegs, resetSregs } from './registers.js';
import {
  bad,
  checkLocalApicState,
  checkProgram,
  checkVersion,
  notSavable,
  regsFromState,
  regsState,
  SOFT_STATE_VERSION,
  type SoftProgramState,
  type SoftVcpuState,
  sregsFromState,
  sregsState,
} from './state.js';

/** KVM_INTERNAL_ERROR_EMULATION: SoftKvm's answer to a guest program that threw. */
export const INTERNAL_ERROR_EMULATION = 1;

/** What a SoftVcpu needs from its VM. */
export interface SoftVcpuHost {
  memory: SoftMemory;
  buses: { pio: IoBus; mmio: IoBus; fastMmio: IoBus };
  irqchip(): SoftIrqChip | undefined;
  onClose(vcpu: SoftVcpu): void;
}

interface Frame {
  gen: GuestStep<void>;
  /** IF to restore on return (set for interrupt handler frames). */
  restoreIf?: boolean;
}

/**
 * A SoftKvm vCPU. `run()` is synchronous like KVM_RUN: it steps the guest
 * program until an operation needs the VMM (an MMIO/PIO access no in-kernel
 * device took, a hlt without irqchip, a shutdown), or until the guest sleeps
 * with nothing to wake it (`{kind: 'intr'}`: await `whenRunnable()`).
 * An MMIO/PIO read's answer is taken from the exit's `data` on the next run().
 */
export class SoftVcpu implements Vcpu {
  readonly id: number;
  /** Like kvm_run.immediate_exit: while set, run() returns `intr` at once. */
  immediateExit = false;
  /** The error a guest program threw (an `internal-error` exit), for diagnosis. */
  lastError: unknown;
  readonly apic: LocalApic | undefined;
  readonly #host: SoftVcpuHost;
  #regs: Regs = resetRegs();
  #sregs: Sregs = resetSregs();
  #stack: Frame[] = [];
  #resume: unknown;
  #pending: Extract<GuestOp, { op: 'mmio' | 'pio' }> | undefined;
  #halted: Extract<GuestOp, { op: 'hlt' }> | undefined;
  #state: 'empty' | 'ready' | 'finished' | 'shutdown' | 'error' = 'empty';
  #kicked = false;
  #closed = false;
  #waiters: (() => void)[] = [];
  readonly #exitBuffer = new Uint8Array(8);
  readonly #cpu: GuestCpu;

  constructor(id: number, host: SoftVcpuHost) {
    this.id = id;
    this.#host = host;
    this.apic = host.irqchip()?.addApic(id);
    const self = this;
    this.#cpu = {
      vcpuId: id,
      get regs() {
        return self.#regs;
      },
      interruptsEnabled: false,
      interruptHandler: undefined as InterruptHandler | undefined,
      memRead: (addr, len) => host.memory.view(addr, len).slice(),
      memWrite: (addr, bytes) => {
        const region = host.memory.find(addr, bytes.length);
        if (region && region.flags & MEM_READONLY)
          throw errnoError('EFAULT', 'write to a read-only memory slot');
        host.memory.view(addr, bytes.length).set(bytes);
      },
    };
  }

  /** Loads a guest program (SoftKvm's "guest code"): it starts at the next run(). */
  load(program: GuestProgram): void {
    this.#checkOpen();
    this.#cpu.interruptsEnabled = false;
    this.#cpu.interruptHandler = undefined;
    this.#stack = [{ gen: program(new Guest(this.#cpu)) }];
    this.#resume = undefined;
    this.#pending = undefined;
    this.#halted = undefined;
    this.#state = 'ready';
  }

  /** The guest API object of the loaded program's CPU (for tests and tools). */
  get interruptsEnabled(): boolean {
    return this.#cpu.interruptsEnabled;
  }

  get halted(): boolean {
    return this.#halted !== undefined;
  }

  /** KVM_GET_REGS. */
  getRegs(): Regs {
    this.#checkOpen();
    return { ...this.#regs };
  }

  /** KVM_SET_REGS. */
  setRegs(regs: Regs): void {
    this.#checkOpen();
    Object.assign(this.#regs, regs);
  }

  /** KVM_GET_SREGS. */
  getSregs(): Sregs {
    this.#checkOpen();
    return cloneSregs(this.#sregs);
  }

  /** KVM_SET_SREGS. */
  setSregs(sregs: Sregs): void {
    this.#checkOpen();
    this.#sregs = cloneSregs(sregs);
  }

  /**
   * Registers, local APIC and program position as plain data. `ENOTSUP` while a guest program
   * is loaded and has not ended: its generator cannot be saved (SoftKvm's one limit).
   */
  state(): SoftVcpuState {
    this.#checkOpen();
    if (this.#state === 'ready') throw notSavable(this.id);
    const program: Record<'empty' | 'ready' | 'finished' | 'shutdown' | 'error', SoftProgramState> = {
      empty: 'none',
      ready: 'none',
      finished: 'finished',
      shutdown: 'shutdown',
      error: 'error',
    };
    return {
      version: SOFT_STATE_VERSION,
      id: this.id,
      regs: regsState(this.#regs),
      sregs: sregsState(this.#sregs),
      lapic: this.apic?.state() ?? null,
      program: program[this.#state],
    };
  }

  /**
   * Loads a `state()` of a vCPU with the same id (checked whole first: `EINVAL`). Any loaded
   * program is dropped; load a new one to run guest code again.
   */
  restoreState(state: SoftVcpuState): void {
    this.#checkOpen();
    const s = checkVersion(state, 'vCPU state');
    if (s.id !== this.id) throw bad(`vCPU state of vCPU ${String(s.id)} restored into vCPU ${this.id}`);
    const regs = regsFromState(s.regs);
    const sregs = sregsFromState(s.sregs);
    if ((s.lapic === null) !== (this.apic === undefined))
      throw bad(
        `vCPU ${this.id}: a local APIC state ${this.apic ? 'is missing' : 'without an in-kernel irqchip'}`,
      );
    const lapic = s.lapic === null ? undefined : checkLocalApicState(s.lapic);
    const program = checkProgram(s.program);
    this.#regs = regs;
    this.#sregs = sregs;
    this.#stack = [];
    this.#resume = undefined;
    this.#pending = undefined;
    this.#halted = undefined;
    this.#cpu.interruptsEnabled = false;
    this.#cpu.interruptHandler = undefined;
    this.#state = program === 'none' ? 'empty' : program;
    if (lapic) this.apic?.restore(lapic);
  }

  kick(): void {
    this.#kicked = true;
    this.#wake(true);
  }

  whenRunnable(): Promise<void> {
    if (this.#runnable()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Called by the irqchip when interrupt state changed. */
  wake(): void {
    this.#wake(false);
  }

  #wake(force: boolean): void {
    if (this.#waiters.length === 0 || !(force || this.#runnable())) return;
    for (const resolve of this.#waiters.splice(0)) resolve();
  }

  #runnable(): boolean {
    if (this.#closed || this.#kicked || !this.#halted) return true;
    return this.#cpu.interruptsEnabled && this.#interruptPending();
  }

  #interruptPending(): boolean {
    if (!this.apic) return false;
    if (this.apic.pendingVector() >= 0) return true;
    const chip = this.#host.irqchip();
    return this.id === 0 && chip !== undefined && this.apic.acceptsPic && chip.pic.output;
  }

  /** Takes the highest-priority interrupt if IF allows; runs the handler frame; returns its vector or -1. */
  #takeInterrupt(): number {
    if (!this.#cpu.interruptsEnabled || !this.apic) return -1;
    let vector = this.apic.pendingVector();
    if (vector >= 0) this.apic.take(vector);
    else {
      const chip = this.#host.irqchip();
      if (this.id === 0 && chip && this.apic.acceptsPic && chip.pic.output) vector = chip.pic.acknowledge();
      else return -1;
    }
    const handler = this.#cpu.interruptHandler;
    const frame = handler?.(vector);
    if (frame) {
      this.#stack.push({ gen: frame, restoreIf: true });
      this.#cpu.interruptsEnabled = false; // interrupt gate
    }
    return vector;
  }

  run(): VcpuExit {
    this.#checkOpen();
    if (this.immediateExit || this.#kicked) {
      this.#kicked = false;
      return { kind: 'intr' };
    }
    switch (this.#state) {
      case 'empty':
        return { kind: 'internal-error', suberror: INTERNAL_ERROR_EMULATION };
      case 'error':
        return { kind: 'internal-error', suberror: INTERNAL_ERROR_EMULATION };
      case 'finished':
      case 'shutdown':
        return { kind: 'shutdown' };
    }
    if (this.#pending) {
      // The VMM's answer to a read exit goes back to the guest now.
      if (!this.#pending.isWrite)
        this.#pending.data.set(this.#exitBuffer.subarray(0, this.#pending.data.length));
      this.#pending = undefined;
    }
    try {
      return this.#loop();
    } catch (error) {
      this.lastError = error;
      this.#state = 'error';
      return { kind: 'internal-error', suberror: INTERNAL_ERROR_EMULATION };
    }
  }

  #loop(): VcpuExit {
    while (true) {
      if (this.#kicked) {
        this.#kicked = false;
        return { kind: 'intr' };
      }
      if (this.#halted) {
        const vector = this.#takeInterrupt();
        if (vector < 0) return { kind: 'intr' }; // asleep: await whenRunnable()
        this.#halted.result.vector = vector;
        this.#halted = undefined;
        continue;
      }
      if (this.#cpu.interruptHandler && this.#cpu.interruptsEnabled && this.#interruptPending()) {
        if (this.#takeInterrupt() >= 0) continue;
      }
      const frame = this.#stack[this.#stack.length - 1];
      if (!frame) {
        this.#state = 'finished';
        return { kind: 'shutdown' };
      }
      const step = frame.gen.next(this.#resume);
      this.#resume = undefined;
      if (step.done) {
        this.#stack.pop();
        if (frame.restoreIf !== undefined) this.#cpu.interruptsEnabled = frame.restoreIf; // iret
        continue;
      }
      const exit = this.#execute(step.value);
      if (exit) return exit;
    }
  }

  /** Performs one guest operation; returns an exit when the VMM must act. */
  #execute(op: GuestOp): VcpuExit | undefined {
    switch (op.op) {
      case 'mmio':
        return this.#mmio(op);
      case 'pio':
        return this.#pio(op);
      case 'hlt':
        if (!this.#host.irqchip()) {
          op.result.vector = -1;
          return { kind: 'hlt' }; // KVM_EXIT_HLT: only without an in-kernel irqchip
        }
        this.#halted = op;
        return undefined;
      case 'shutdown':
        this.#state = 'shutdown';
        return { kind: 'shutdown' };
    }
  }

  #mmio(op: Extract<GuestOp, { op: 'mmio' }>): VcpuExit | undefined {
    const { addr, data, isWrite } = op;
    const len = data.length;
    if (![1, 2, 4, 8].includes(len)) throw errnoError('EINVAL', `MMIO access of ${len} bytes`);
    const { memory, buses } = this.#host;
    const region = memory.find(addr, len);
    if (region && !(isWrite && region.flags & MEM_READONLY)) {
      const off = Number(addr - region.guestPhysAddr);
      if (isWrite) region.bytes.set(data, off);
      else data.set(region.bytes.subarray(off, off + len));
      return undefined;
    }
    // Fast MMIO bus first (length-0 ioeventfds), as on an EPT misconfiguration.
    if (isWrite && buses.fastMmio.size > 0 && buses.fastMmio.write(addr, data)) return undefined;
    if (this.apic && addr >= LAPIC_BASE && addr + BigInt(len) <= LAPIC_BASE + BigInt(LAPIC_SIZE)) {
      const offset = Number(addr - LAPIC_BASE);
      if (isWrite) this.apic.write(offset & ~3, Number(BigInt.asUintN(32, bytesValue(data))));
      else writeValue(data, this.apic.read(offset & ~3));
      return undefined;
    }
    if (isWrite ? buses.mmio.write(addr, data) : buses.mmio.read(addr, data)) return undefined;
    this.#pending = op;
    const exitData = this.#exitBuffer.subarray(0, len);
    if (isWrite) exitData.set(data);
    else exitData.fill(0);
    return { kind: 'mmio', isWrite, addr, len, data: exitData };
  }

  #pio(op: Extract<GuestOp, { op: 'pio' }>): VcpuExit | undefined {
    const { port, data, isWrite } = op;
    const size = data.length;
    if (![1, 2, 4].includes(size)) throw errnoError('EINVAL', `PIO access of ${size} bytes`);
    if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw errnoError('EINVAL', `port ${port}`);
    const bus = this.#host.buses.pio;
    if (isWrite ? bus.write(BigInt(port), data) : bus.read(BigInt(port), data)) return undefined;
    this.#pending = op;
    const exitData = this.#exitBuffer.subarray(0, size);
    if (isWrite) exitData.set(data);
    else exitData.fill(0);
    return { kind: 'io', direction: isWrite ? 'out' : 'in', port, size, count: 1, data: exitData };
  }

  /** Closes the vCPU: its program is dropped and its local APIC detached. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stack = [];
    this.#host.irqchip()?.removeApic(this.id);
    this.#host.onClose(this);
    this.#wake(true);
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw errnoError('EBADF', `vCPU ${this.id} is closed`);
  }
}

function bytesValue(data: Uint8Array): bigint {
  let v = 0n;
  for (let i = data.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[i] as number);
  return v;
}

function writeValue(data: Uint8Array, value: number): void {
  for (let i = 0; i < data.length; i++) data[i] = i < 4 ? (value >>> (8 * i)) & 0xff : 0;
}
