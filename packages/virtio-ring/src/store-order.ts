/**
 * True where the CPU makes a thread's stores visible to other CPUs in program order (x86's
 * TSO): there a plain typed-array store after the used ring entries is a release store, as
 * Linux's `smp_store_release` (after `virtio_wmb`, a compiler barrier there) and C's
 * `__ATOMIC_RELEASE` store are a plain `mov`.
 *
 * What a driver on another CPU (a guest vCPU, QEMU, a worker thread) can observe of the
 * device's `used[i] = {id, len}; used.idx = n`: the index before the entry only if (a) the
 * compiled code stores them out of order or (b) the CPU makes them visible out of order.
 * (a) V8 (interpreter, Sparkplug, Maglev, TurboFan) emits typed-array stores on the effect
 * chain in program order; no pass sinks a store below a later one (store elimination may drop
 * a store that a later one to the same address overwrites, which leaves the order of the rest),
 * and an aligned Uint16Array/Uint32Array store is one `mov` (no tearing). (b) TSO forbids
 * store-store and load-store reordering, so the descriptor reads also complete before the
 * index says the driver may reuse them. TSO does allow a store to pass a later load (the
 * store buffer): where the device stores an index and then reads the driver's flags or event
 * index to decide on a notification, it still needs a full fence (a sequentially consistent
 * `Atomics.store`, `xchg` on x86-64). Elsewhere (arm64 stores can become visible out of order)
 * every release stays an `Atomics.store`.
 */
export const STORES_VISIBLE_IN_ORDER: boolean = cpuIsX86();

/** Node's `process.arch`, read without importing node:process: the rings run in browsers too, where the CPU is unknown (false: every release an `Atomics.store`). */
function cpuIsX86(): boolean {
  const arch = (globalThis as { process?: { arch?: unknown } }).process?.arch;
  return arch === 'x64' || arch === 'ia32';
}
