/**
 * For testing crash recovery (`--delay-completions MS`): a BlockBackend whose
 * transfers happen at once but report completion after a pseudo-random delay
 * of 0..MS milliseconds, so requests complete out of order and several are
 * always in flight. That is the case vhost-user's inflight tracking exists
 * for: a back-end killed while a later request has completed and an earlier
 * one has not. The delays are a fixed sequence (xorshift32), so a run can be
 * repeated.
 */
import type { BlockBackend } from '@rxvmm/virtio-blk';

export class DelayedCompletionBackend implements BlockBackend {
  private seed = 0x2545f491;

  constructor(
    private readonly inner: BlockBackend,
    private readonly maxDelayMs: number,
  ) {
    if (!(Number.isInteger(maxDelayMs) && maxDelayMs >= 1))
      throw new RangeError(`completion delay ${maxDelayMs} must be a positive number of milliseconds`);
  }

  get size(): number {
    return this.inner.size;
  }

  get readOnly(): boolean {
    return this.inner.readOnly;
  }

  async readv(buffers: Uint8Array[], position: number): Promise<number> {
    const n = await this.inner.readv(buffers, position);
    await this.delay();
    return n;
  }

  async writev(buffers: Uint8Array[], position: number): Promise<number> {
    const n = await this.inner.writev(buffers, position);
    await this.delay();
    return n;
  }

  async flush(): Promise<void> {
    await this.inner.flush();
    await this.delay();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private delay(): Promise<void> {
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x >>> 0;
    const ms = this.seed % (this.maxDelayMs + 1);
    return new Promise((resolve) => setTimeout(resolve, ms));
  }
}
