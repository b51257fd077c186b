/**
 * One virtqueue as the back-end sees it, with vhost-user's ring state machine:
 *
 * - A ring starts STOPPED. It starts on the first kick (the kick eventfd turns
 *   readable) after SET_VRING_KICK, and is processed only while started AND
 *   enabled AND fully configured (memory table, size, addresses).
 * - A kick that arrives while the ring cannot be processed yet is HELD
 *   (`pendingKick`) and served as soon as the ring becomes processable.
 * - GET_VRING_BASE stops the ring: no more pops, in-flight requests are awaited,
 *   the kick and call fds are closed, and the next avail index is returned.
 * - Without VHOST_USER_F_PROTOCOL_FEATURES rings are enabled; with it they wait
 *   for SET_VRING_ENABLE.
 */

import { errnoError, isErrno } from '@rxvmm/errno';
import { EventFd } from '@rxvmm/eventfd';
import type { GuestMemory } from '@rxvmm/guest-memory';
import { queueAreaSizes, queueSizeError } from '@rxvmm/virtio';
import { type DescriptorChain, SplitQueue, serveQueue } from '@rxvmm/virtio-ring';
import { Subject, type Subscription } from 'rxjs';
import type { VringAddr } from './message.js';

export interface VringStats {
  kicks: number;
  chains: number;
  calls: number;
}

export interface VringHost {
  /** Translated ring areas need the memory table; null before SET_MEM_TABLE. */
  readonly memory: GuestMemory | null;
  vaToGpa(va: bigint, len: bigint): bigint;
  readonly eventIdx: boolean;
  readonly indirect: boolean;
  /** Runs one chain through the device: the used length, now or later. */
  handleChain(queueIndex: number, memory: GuestMemory, chain: DescriptorChain): number | PromiseLike<number>;
  /** A ring broke (bad descriptor, bad layout): log and signal the err fd. */
  ringFailed(queueIndex: number, error: Error): void;
}

/** A split ring's three areas in guest-physical addresses. */
export interface RingAreas {
  descTable: bigint;
  driverArea: bigint;
  deviceArea: bigint;
}

/**
 * Translates a SET_VRING_ADDR's frontend virtual addresses of a split ring of
 * `size` entries to guest-physical ones; each whole area (sizes from
 * `@rxvmm/virtio`'s `queueAreaSizes`) must lie in one region of the memory
 * table, else `vaToGpa` throws EFAULT.
 */
export function translateRingAreas(
  vaToGpa: (va: bigint, len: bigint) => bigint,
  addr: VringAddr,
  size: number,
): RingAreas {
  const bytes = queueAreaSizes(size, false);
  return {
    descTable: vaToGpa(addr.descUserAddr, BigInt(bytes.desc)),
    driverArea: vaToGpa(addr.availUserAddr, BigInt(bytes.driver)),
    deviceArea: vaToGpa(addr.usedUserAddr, BigInt(bytes.device)),
  };
}

/** One serving of the ring: the loop's kick input, and a promise settled when the loop ends. */
interface Serving {
  kicks: Subject<void>;
  ended: Promise<void>;
  subscription: Subscription;
}

export class Vring {
  size = 0;
  addr: VringAddr | null = null;
  base = 0;
  enabled = false;
  started = false;
  /** A kick arrived (or work may be left in the ring) while the ring was not being served. */
  pendingKick = false;
  broken = false;
  /** Set while the session swaps something the ring depends on (memory table, addresses); kicks are held. */
  suspended = false;
  queue: SplitQueue | null = null;
  kick: EventFd | null = null;
  call: EventFd | null = null;
  err: EventFd | null = null;
  readonly stats: VringStats = { kicks: 0, chains: 0, calls: 0 };
  private kickSub: Subscription | null = null;
  /** The serving loop, while the ring is processable and served. */
  private serving: Serving | null = null;
  /** Settles when a pause (drain) in progress has published its last used entry. */
  private pausing: Promise<void> | null = null;

  constructor(
    readonly index: number,
    private readonly host: VringHost,
  ) {}

  /** SET_VRING_KICK: a new kick fd (or none). The ring starts on its first signal. */
  setKick(fd: number | null): void {
    this.closeKick();
    if (fd === null) {
      // No fd (and no in-band notifications): there will never be a kick, so the ring starts now.
      this.started = true;
      this.pendingKick = true;
      this.process();
      return;
    }
    const kick = EventFd.fromFd(fd);
    this.kick = kick;
    this.kickSub = kick.signals$.subscribe({
      next: () => {
        this.stats.kicks++;
        this.started = true;
        if (this.serving) this.serving.kicks.next();
        else {
          this.pendingKick = true;
          this.process();
        }
      },
      error: (error: Error) => this.host.ringFailed(this.index, error),
    });
  }

  setCall(fd: number | null): void {
    this.call?.close();
    // nonblock: the frontend controls the counter; a blocking write at its maximum would hang the loop.
    this.call = fd === null ? null : EventFd.fromFd(fd, { nonblock: true });
  }

  setErr(fd: number | null): void {
    this.err?.close();
    this.err = fd === null ? null : EventFd.fromFd(fd, { nonblock: true });
  }

  /** SET_VRING_ENABLE. Enabling serves a held kick; disabling pauses the ring. */
  setEnabled(enabled: boolean): void {
    this.enabled = enabled;
    if (enabled) this.process();
    else void this.drain(); // requests in flight finish; nothing more is popped until re-enabled
  }

  /** Config changes (num, base, addr) rebuild the queue object on the next processing. Not while served. */
  invalidate(): void {
    if (this.queue) this.base = this.queue.nextAvail;
    this.queue = null;
    this.broken = false;
  }

  /** Starts serving the ring if it can be served and a kick is held; otherwise the kick stays held. */
  process(): void {
    if (this.serving || this.pausing || !this.pendingKick) return;
    if (!this.started || !this.enabled || this.broken || this.suspended) return;
    const memory = this.host.memory;
    if (memory === null || this.size === 0 || this.addr === null) return;
    let queue: SplitQueue;
    try {
      queue = this.queue ?? this.build(memory);
    } catch (error) {
      this.fail(error);
      return;
    }
    this.pendingKick = false;
    this.serving = this.serve(queue, memory);
    this.serving.kicks.next();
  }

  /**
   * Runs `serveQueue` on the ring: the one device loop (budget per turn, concurrency bounded by
   * the ring size, one call per batch of used entries as event-idx allows).
   */
  private serve(queue: SplitQueue, memory: GuestMemory): Serving {
    const kicks = new Subject<void>();
    let subscription!: Subscription;
    const ended = new Promise<void>((resolve) => {
      subscription = kicks
        .pipe(
          serveQueue(queue, (chain) => this.host.handleChain(this.index, memory, chain), {
            onPop: () => {
              this.stats.chains++;
            },
          }),
        )
        .subscribe({
          next: () => {
            if (this.call === null || this.call.closed) return;
            this.stats.calls++;
            signal(this.call);
          },
          error: (error: unknown) => {
            if (this.serving?.kicks === kicks) this.serving = null;
            this.fail(error);
            resolve();
          },
          complete: () => resolve(),
        });
    });
    return { kicks, ended, subscription };
  }

  /** A ring (or its device) failed: it stays broken until reconfigured; the frontend hears of it. */
  private fail(error: unknown): void {
    this.broken = true;
    this.host.ringFailed(this.index, error instanceof Error ? error : new Error(String(error)));
  }

  /**
   * Pauses the ring: pops nothing more, waits for the requests in flight and publishes their
   * used entries (and the call they need). Kicks after this are held until `process()`.
   */
  drain(): Promise<void> {
    if (this.pausing) return this.pausing; // a second caller waits for the same requests
    const serving = this.serving;
    if (serving === null) return Promise.resolve();
    this.serving = null;
    serving.kicks.complete();
    this.pausing = serving.ended.then(() => {
      this.pausing = null;
      // The pause may have left chains in the ring whose kick it consumed: look again on resume.
      if (this.started && !this.broken) this.pendingKick = true;
      this.process(); // resumes at once if what paused the ring is already over (re-enabled)
    });
    return this.pausing;
  }

  /** GET_VRING_BASE: stop, drain, release the notifiers; returns the next avail index. */
  async stop(): Promise<number> {
    this.started = false;
    this.closeKick();
    await this.drain();
    this.pendingKick = false;
    this.invalidate();
    this.call?.close();
    this.call = null;
    return this.base;
  }

  /** Releases everything (disconnect / reset). Caller drains first. */
  dispose(): void {
    this.started = false;
    this.pendingKick = false;
    this.serving?.subscription.unsubscribe();
    this.serving = null;
    this.closeKick();
    this.call?.close();
    this.call = null;
    this.err?.close();
    this.err = null;
    this.queue = null;
  }

  private closeKick(): void {
    this.kickSub?.unsubscribe();
    this.kickSub = null;
    this.kick?.close();
    this.kick = null;
  }

  private build(memory: GuestMemory): SplitQueue {
    const n = this.size;
    const { descTable, driverArea, deviceArea } = translateRingAreas(
      (va, len) => this.host.vaToGpa(va, len),
      this.addr as VringAddr,
      n,
    );
    const queue = new SplitQueue(memory, {
      size: n,
      descTable,
      driverArea,
      deviceArea,
      eventIdx: this.host.eventIdx,
      indirect: this.host.indirect,
    });
    queue.nextAvail = this.base;
    // The used index lives in guest memory: after a reconnect it is the truth, not our counter.
    queue.nextUsed = memory.readU16(deviceArea + 2n);
    this.queue = queue;
    return queue;
  }
}

/**
 * Signals a call/err eventfd of the frontend. EAGAIN means its counter is at the maximum: a
 * notification is already pending, so nothing is lost by dropping this one (and it must not throw
 * from a microtask, which would take the whole process down).
 */
export function signal(efd: EventFd): void {
  try {
    efd.write(1n);
  } catch (error) {
    if (!isErrno(error, 'EAGAIN')) throw error;
  }
}

/** Validates a SET_VRING_NUM value: the split-ring queue-size rule of `@rxvmm/virtio`, at most `max`. */
export function checkRingSize(num: number, max: number): void {
  const why = queueSizeError(num, false, max);
  if (why) throw errnoError('EINVAL', `SET_VRING_NUM ${num}: ${why}`);
}
