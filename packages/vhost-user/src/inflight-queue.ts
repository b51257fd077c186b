/**
 * A virtqueue that keeps an inflight record while it is served: the ring
 * (SplitQueue or PackedQueue) does the work, the record (split-inflight.ts,
 * packed-inflight.ts) is written around each pop and each used entry in the
 * order vhost-user.rst gives, and the chains that were in flight when the
 * previous back-end died are handed out by `pop()` first, in the order they
 * were popped then. `serveQueue` serves it like any other Virtqueue.
 *
 * Record stores are plain typed-array stores: they only have to survive this
 * process being killed (the mapping is shared memory, so every store executed
 * is kept), and stores are executed in program order; nobody reads the record
 * while this back-end runs.
 */
import {
  ChainBuffer,
  type DescriptorChain,
  type QueueState,
  type Virtqueue,
  type VirtqueueError,
} from '@rxvmm/virtio-ring';

export abstract class InflightTrackedQueue<Q extends Virtqueue> implements Virtqueue {
  /** Chains to serve again, in their original order; handed out before the ring's own. */
  private resubmits: DescriptorChain[];
  private resubmitAt = 0;
  private scratch: ChainBuffer | null = null;

  constructor(
    readonly queue: Q,
    resubmits: DescriptorChain[],
  ) {
    this.resubmits = resubmits;
  }

  get size(): number {
    return this.queue.size;
  }

  get broken(): VirtqueueError | null {
    return this.queue.broken;
  }

  /** Chains recovered from the record and not handed out yet. */
  get resubmitsLeft(): number {
    return this.resubmits.length - this.resubmitAt;
  }

  pop(): DescriptorChain | null {
    if (this.resubmitAt < this.resubmits.length) return this.nextResubmit();
    return this.popTracked();
  }

  popInto(chain: ChainBuffer): boolean {
    if (this.resubmitAt < this.resubmits.length) {
      chain.setFrom(this.nextResubmit());
      return true;
    }
    return this.popIntoTracked(chain);
  }

  drain(onChain: (chain: ChainBuffer) => void, max = Number.POSITIVE_INFINITY): number {
    this.scratch ??= new ChainBuffer();
    let n = 0;
    while (n < max && this.popInto(this.scratch)) {
      n++;
      onChain(this.scratch);
    }
    return n;
  }

  pushUsed(head: number, len: number): void {
    this.addUsed(head, len);
    this.publishUsed();
  }

  abstract addUsed(head: number, len: number): void;

  publishUsed(): void {
    this.queue.publishUsed();
    this.published();
  }

  needsNotification(): boolean {
    const notify = this.queue.needsNotification(); // publishes first
    this.published();
    return notify;
  }

  enableNotifications(): boolean {
    return this.queue.enableNotifications();
  }

  disableNotifications(): void {
    this.queue.disableNotifications();
  }

  /** A device reset forgets the chains to resubmit with everything else. */
  reset(): void {
    this.queue.reset();
    this.resubmits = [];
    this.resubmitAt = 0;
  }

  state(): QueueState {
    return this.queue.state();
  }

  /** Pops from the ring and records the chain as in flight. */
  protected abstract popTracked(): DescriptorChain | null;
  protected abstract popIntoTracked(chain: ChainBuffer): boolean;
  /** Called right after every used-index publication (split: the batch's records are closed). */
  protected abstract published(): void;

  private nextResubmit(): DescriptorChain {
    const chain = this.resubmits[this.resubmitAt++] as DescriptorChain;
    if (this.resubmitAt === this.resubmits.length) {
      this.resubmits = [];
      this.resubmitAt = 0;
    }
    return chain;
  }
}
