/**
 * Kicking a vCPU out of KVM_RUN from another thread.
 *
 * The vCPU's thread publishes, in a SharedArrayBuffer, its kernel thread id and
 * the address of its `kvm_run` mapping. A kick sets `kvm_run.immediate_exit`
 * (so a KVM_RUN about to start returns EINTR at once) and then sends SIGUSR2 to
 * that thread (so a KVM_RUN in progress returns EINTR). A tiny spinlock in the
 * same buffer makes "is the vCPU still alive" and the kick one step, so a kick
 * never writes to an unmapped `kvm_run` nor signals a thread id the kernel may
 * have reused: the vCPU thread retires the slot under the lock before closing.
 */
import * as sys from '@rxvmm/sys';
import { RunLayout } from './abi.js';

const LOCK = 0;
const ALIVE = 1;
const TID = 2;
const KICKS = 3;
/** Int32Array index (bytes 32..35): the vCPU fd, for salvage after a crashed thread. */
const VCPU_FD = 8;
/** BigInt64Array indices (bytes 16.. of the buffer). */
const RUN_ADDRESS = 2;
const RUN_SIZE = 3;

export const KICK_SLOT_BYTES = 40;

function lock(words: Int32Array): void {
  while (Atomics.compareExchange(words, LOCK, 0, 1) !== 0) {
    // The holder runs a few hundred ns of straight-line code; no wait needed.
  }
}

function unlock(words: Int32Array): void {
  Atomics.store(words, LOCK, 0);
}

/** The vCPU thread's side: publish, then retire before closing the vCPU. */
export class KickTarget {
  readonly buffer: SharedArrayBuffer;
  readonly #words: Int32Array;
  readonly #wide: BigInt64Array;

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(KICK_SLOT_BYTES)) {
    this.buffer = buffer;
    this.#words = new Int32Array(buffer, 0, 10);
    this.#wide = new BigInt64Array(buffer, 0, 4);
  }

  /** Called on the vCPU's thread once its kvm_run is mapped. */
  publish(runAddress: bigint, runSize: number, vcpuFd = -1): void {
    const tid = sys.prepareKickTarget();
    lock(this.#words);
    Atomics.store(this.#wide, RUN_ADDRESS, runAddress);
    Atomics.store(this.#wide, RUN_SIZE, BigInt(runSize));
    Atomics.store(this.#words, VCPU_FD, vcpuFd);
    Atomics.store(this.#words, TID, tid);
    Atomics.store(this.#words, ALIVE, 1);
    unlock(this.#words);
  }

  /** After this returns no kicker touches the vCPU: it may be closed. */
  retire(): void {
    lock(this.#words);
    Atomics.store(this.#words, ALIVE, 0);
    unlock(this.#words);
  }
}

/** Any other thread's side, over the same SharedArrayBuffer. */
export class Kicker {
  readonly #words: Int32Array;
  readonly #wide: BigInt64Array;
  #run: { address: bigint; buffer: ArrayBuffer; bytes: Uint8Array } | undefined;

  constructor(buffer: SharedArrayBuffer) {
    this.#words = new Int32Array(buffer, 0, 10);
    this.#wide = new BigInt64Array(buffer, 0, 4);
  }

  /** Kicks the vCPU if it is alive; returns whether it was. */
  kick(): boolean {
    lock(this.#words);
    try {
      if (Atomics.load(this.#words, ALIVE) !== 1) {
        this.#drop();
        return false;
      }
      const address = Atomics.load(this.#wide, RUN_ADDRESS);
      if (this.#run?.address !== address) {
        this.#drop();
        const size = Number(Atomics.load(this.#wide, RUN_SIZE));
        const buffer = sys.mappingBuffer(address, size);
        this.#run = { address, buffer, bytes: new Uint8Array(buffer) };
      }
      Atomics.store(this.#run.bytes, RunLayout.immediate_exit, 1);
      Atomics.add(this.#words, KICKS, 1);
      sys.kickThread(Atomics.load(this.#words, TID));
      return true;
    } finally {
      unlock(this.#words);
    }
  }

  /** Kicks sent so far through this slot (from any thread). */
  get kicks(): number {
    return Atomics.load(this.#words, KICKS);
  }

  get alive(): boolean {
    return Atomics.load(this.#words, ALIVE) === 1;
  }

  /**
   * After the vCPU's thread died without retiring the slot (an uncaught
   * exception ends a worker without running its cleanup): closes the vCPU fd
   * and unmaps its kvm_run from here. Returns whether there was anything to do.
   * Only call once that thread is gone.
   */
  salvage(): boolean {
    lock(this.#words);
    const alive = Atomics.load(this.#words, ALIVE) === 1;
    Atomics.store(this.#words, ALIVE, 0);
    this.#drop();
    unlock(this.#words);
    if (!alive) return false;
    const fd = Atomics.load(this.#words, VCPU_FD);
    sys.munmap(Atomics.load(this.#wide, RUN_ADDRESS), Number(Atomics.load(this.#wide, RUN_SIZE)));
    if (fd >= 0) sys.close(fd);
    return true;
  }

  /** Drops this thread's view of kvm_run. */
  dispose(): void {
    lock(this.#words);
    this.#drop();
    unlock(this.#words);
  }

  #drop(): void {
    if (this.#run) sys.detachBuffer(this.#run.buffer);
    this.#run = undefined;
  }
}
