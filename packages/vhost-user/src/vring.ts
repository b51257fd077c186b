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
 * - Split or packed (VIRTIO_F_RING_PACKED acked): the base of SET/GET_VRING_BASE
 *   is the next avail index (split) or, packed, bits 0-14 avail position, 15
 *   avail wrap counter, 16-30 used position, 31 used wrap counter.
 * - With an inflight region (INFLIGHT_SHMFD) the ring is served with its record
 *   (split-inflight.ts, packed-inflight.ts): a record an earlier back-end left
 *   decides where popping resumes, and its chains in flight are served first.
 */

import { errnoError, isErrno } from '@rxvmm/errno';
import { EventFd } from '@rxvmm/eventfd';
import type { GuestMemory } from '@rxvmm/guest-memory';
import { queueAreaSizes, queueSizeError } from '@rxvmm/virtio';
import {
  type ChainBufferHandler,
  type DescriptorChain,
  PackedQueue,
  type QueueConfig,
  SplitQueue,
  serveQueue,
  type Virtqueue,
} from '@rxvmm/virtio-ring';
import { Subject, type Subscription } from 'rxjs';
import type { RegionViews } from './inflight-region.js';
import type { VringAddr } from './message.js';
import { PackedInflightQueue, PackedInflightRecord } from './packed-inflight.js';
import { SplitInflightQueue, SplitInflightRecord } from './split-inflight.js';

/** Counters of one ring of a session (`session.stats.rings`). */
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
  /** VIRTIO_F_RING_PACKED was acked: rings are packed. */
  readonly packed: boolean;
  /** Queue `index`'s region of the inflight memory (SET_INFLIGHT_FD), or null. */
  inflight(index: number): { views: RegionViews; descNum: number } | null;
  /** Session events worth a line (the session's log). */
  note(line: string): void;
  /** Runs one chain through the device: the used length, now or later. */
  handleChain(queueIndex: number, memory: GuestMemory, chain: DescriptorChain): number | PromiseLike<number>;
  /**
   * The device's synchronous handler of chains popped into a reused ChainBuffer
   * (`ChainDevice.handleChainBuffer`), used instead of `handleChain` when there is one.
   */
  chainBufferHandler?(queueIndex: number, memory: GuestMemory): ChainBufferHandler | undefined;
  /** A ring broke (bad descriptor, bad layout): log and signal the err fd. */
  ringFailed(queueIndex: number, error: Error): void;
}

/** A ring's three areas in guest-physical addresses (packed: descriptor ring, driver and device event suppression). */
export interface RingAreas {
  descTable: bigint;
  driverArea: bigint;
  deviceArea: bigint;
}

/**
 * Translates a SET_VRING_ADDR's frontend virtual addresses of a ring of
 * `size` entries (split, or `packed`) to guest-physical ones; each whole area
 * (sizes from `@rxvmm/virtio`'s `queueAreaSizes`) must lie in one region of
 * the memory table, else `vaToGpa` throws EFAULT.
 */
export function translateRingAreas(
  vaToGpa: (va: bigint, len: bigint) => bigint,
  addr: VringAddr,
  size: number,
  packed = false,
): RingAreas {
  const bytes = queueAreaSizes(size, packed);
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
  /** The ring, once built; `served` is what the loop serves (the ring, or the ring with its inflight record). */
  queue: SplitQueue | PackedQueue | null = null;
  private served: Virtqueue | null = null;
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
    // A record left by an earlier back-end may hold requests the guest is waiting for and will not
    // kick again for: the ring starts now, as libvhost-user kicks itself after a reconnect.
    if (this.hasInflightRecord()) {
      this.started = true;
      this.pendingKick = true;
    }
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
    const q = this.queue;
    if (q) this.base = q instanceof PackedQueue ? q.vringBase : q.nextAvail;
    this.queue = null;
    this.served = null;
    this.broken = false;
  }

  /** Starts serving the ring if it can be served and a kick is held; otherwise the kick stays held. */
  process(): void {
    if (this.serving || this.pausing || !this.pendingKick) return;
    if (!this.started || !this.enabled || this.broken || this.suspended) return;
    const memory = this.host.memory;
    if (memory === null || this.size === 0 || this.addr === null) return;
    let queue: Virtqueue;
    try {
      queue = this.served ?? this.build(memory);
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
  private serve(queue: Virtqueue, memory: GuestMemory): Serving {
    const kicks = new Subject<void>();
    const handleBuffer = this.host.chainBufferHandler?.(this.index, memory);
    let subscription!: Subscription;
    const ended = new Promise<void>((resolve) => {
      subscription = kicks
        .pipe(
          serveQueue(queue, (chain) => this.host.handleChain(this.index, memory, chain), {
            ...(handleBuffer ? { handleBuffer } : {}),
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
    this.served = null;
  }

  private closeKick(): void {
    this.kickSub?.unsubscribe();
    this.kickSub = null;
    this.kick?.close();
    this.kick = null;
  }

  /** True when an inflight record for this ring was left by an earlier session or back-end. */
  private hasInflightRecord(): boolean {
    const inflight = this.host.inflight(this.index);
    return inflight !== null && inflight.views.u16[4] !== 0; // version, at byte 8 in both layouts
  }

  private build(memory: GuestMemory): Virtqueue {
    const n = this.size;
    const packed = this.host.packed;
    const { descTable, driverArea, deviceArea } = translateRingAreas(
      (va, len) => this.host.vaToGpa(va, len),
      this.addr as VringAddr,
      n,
      packed,
    );
    const config: QueueConfig = {
      size: n,
      descTable,
      driverArea,
      deviceArea,
      eventIdx: this.host.eventIdx,
      indirect: this.host.indirect,
      packed,
    };
    const inflight = this.host.inflight(this.index);
    let served: Virtqueue;
    if (packed) {
      const queue = new PackedQueue(memory, config);
      checkPackedBase(this.base, n);
      queue.vringBase = this.base;
      this.queue = queue;
      served = queue;
      if (inflight) {
        const tracked = PackedInflightQueue.open(
          queue,
          new PackedInflightRecord(inflight.views, inflight.descNum),
        );
        this.noteRecovery(tracked.resubmitsLeft, this.base, queue.vringBase);
        served = tracked;
      }
    } else {
      const queue = new SplitQueue(memory, config);
      if (this.base > 0xffff)
        throw errnoError('EINVAL', `split ring base ${this.base} is not a 16-bit index`);
      queue.nextAvail = this.base;
      // The used index lives in guest memory: after a reconnect it is the truth, not our counter.
      queue.nextUsed = memory.readU16(deviceArea + 2n);
      this.queue = queue;
      served = queue;
      if (inflight) {
        const tracked = SplitInflightQueue.open(
          queue,
          new SplitInflightRecord(inflight.views, inflight.descNum),
        );
        this.noteRecovery(tracked.resubmitsLeft, this.base, queue.nextAvail);
        served = tracked;
      }
    }
    this.served = served;
    return served;
  }

  /** Says so when a record changed where the ring resumes or left requests to serve again. */
  private noteRecovery(resubmits: number, base: number, resumed: number): void {
    if (resubmits === 0 && base === resumed) return;
    const hex = (v: number) => `0x${v.toString(16)}`;
    this.host.note(
      `vhost-user: queue ${this.index}: inflight record: ${resubmits} request(s) in flight served again, ring resumes at ${hex(resumed)} (SET_VRING_BASE said ${hex(base)})`,
    );
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

/** Validates a SET_VRING_NUM value: the queue-size rule of `@rxvmm/virtio` (split or packed), at most `max`. */
export function checkRingSize(num: number, max: number, packed = false): void {
  const why = queueSizeError(num, packed, max);
  if (why) throw errnoError('EINVAL', `SET_VRING_NUM ${num}: ${why}`);
}

/** A packed ring's VRING_BASE: both positions inside a ring of `size` entries. */
export function checkPackedBase(base: number, size: number): void {
  const avail = base & 0x7fff;
  const used = (base >>> 16) & 0x7fff;
  if (avail >= size || used >= size)
    throw errnoError(
      'EINVAL',
      `packed ring base 0x${base.toString(16)}: avail position ${avail} or used position ${used} is outside a ring of ${size}`,
    );
}
