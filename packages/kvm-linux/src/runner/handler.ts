/**
 * What a VMM writes to handle a vCPU's exits on the runner's worker thread:
 * a module whose default export (or `handler` export) is a `VcpuHandler`.
 * The module is imported INSIDE the worker, so each exit is answered there,
 * with no thread hop: for an `in` or an MMIO read, write the answer into
 * `exit.data` and return; the runner enters the guest again at once.
 */
import type { TransferListItem } from 'node:worker_threads';
import type { MemoryRegion, VcpuExit } from '@rxvmm/kvm';
import type { LinuxVcpu } from '../vcpu.js';
import type { ExitCounters } from './counters.js';

/** What a handler module's functions get in the vCPU's worker: the vCPU, guest RAM, `data`, counters, `post`. */
export interface VcpuContext<Data = unknown> {
  /** The vCPU, created on this worker thread (set registers, the LAPIC, ... in `setup`). */
  readonly vcpu: LinuxVcpu;
  readonly id: number;
  /** Guest RAM, zero-copy views made in this thread; `Vm`-like for `setupLongMode(ctx, ctx.vcpu, ...)`. */
  memoryRegions(): readonly MemoryRegion[];
  /** Zero-copy view of [gpa, gpa+length) (throws EFAULT outside RAM). */
  slice(gpa: bigint, length: number): Uint8Array;
  /** `options.data` given to the runner (structured clone). */
  readonly data: Data;
  readonly counters: ExitCounters;
  /** Sends a message to the main thread (`runner.messages$`). */
  post(message: unknown, transfer?: readonly TransferListItem[]): void;
  /** True once the main thread asked the runner to stop. */
  readonly stopRequested: boolean;
}

/**
 * Return value of `onExit`: `'stop'` ends the run; `'continue'` keeps running
 * after an exit that otherwise ends it (hlt, shutdown, errors); nothing means
 * the default (continue after io/mmio/system-event, stop after the others).
 */
// biome-ignore lint/suspicious/noConfusingVoidType: handlers that return nothing are typed `void`
export type ExitDecision = 'stop' | 'continue' | undefined | void;

/** A handler module's default (or `handler`) export: `setup`, `onExit`, and the optional hooks. */
export interface VcpuHandler<Data = unknown> {
  /** Once, before the first run: registers, code in RAM, per-thread state. */
  setup?(ctx: VcpuContext<Data>): void | Promise<void>;
  /** Every exit except `intr` (kicks, handled by the runner). Keep it synchronous on hot paths. */
  onExit(exit: VcpuExit, ctx: VcpuContext<Data>): ExitDecision | Promise<ExitDecision>;
  /** After a kick (`intr`) that was not a stop, before running again. */
  onKick?(ctx: VcpuContext<Data>): void | Promise<void>;
  /** A message from `runner.post()` (delivered when the worker next yields: post kicks it). */
  onMessage?(message: unknown, ctx: VcpuContext<Data>): void;
  /** Once, after the last run, before the vCPU is closed. */
  teardown?(ctx: VcpuContext<Data>): void | Promise<void>;
}

/** Identity helper that types a handler module's export. */
export function defineVcpuHandler<Data = unknown>(handler: VcpuHandler<Data>): VcpuHandler<Data> {
  return handler;
}
