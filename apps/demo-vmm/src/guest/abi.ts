/**
 * The contract between rxvmm-demo and its guests: where things are in guest
 * RAM, which ports mean what, and the layout of the boot-info and results
 * blocks. Mirrors guest/abi.h (a test compiles a C check of the offsets).
 */
import type { GuestMemory } from '@rxvmm/guest-memory';

/** Where the flat guest binary is loaded and entered. */
export const GUEST_LOAD_ADDR = 0x10_0000n;
/** Where the VMM writes `struct boot_info` (the results block follows it). */
export const BOOT_INFO_ADDR = 0x8_0000n;
/** Free RAM the guest carves its queue and buffers from. */
export const SCRATCH_BASE = 0x20_0000n;

/** `boot_info.magic`: "RXVMMBI1"; a guest that reads anything else does not drive the device. */
export const BOOT_INFO_MAGIC = 0x3149424d4d565852n; // "RXVMMBI1"

/** 1-byte `out` at the guest's first instruction (start-up time). */
export const HELLO_PORT = 0x3f8;
/** 1-byte `out`: the run is over, results are final. */
export const DONE_PORT = 0x3f4;

/** How the guest misbehaves on purpose (`--guest-mode`): normal, a queue outside RAM, a bad descriptor head. */
export const GuestMode = { normal: 0, badQueueAddr: 1, badHead: 2 } as const;
/** A `GuestMode` by name. */
export type GuestModeName = keyof typeof GuestMode;

/** `struct boot_info`: eleven u64 fields, in this order. */
export const BOOT_INFO_FIELDS = [
  'magic',
  'mmioBase',
  'requests',
  'blockSize',
  'irqVector',
  'ioapicPin',
  'mode',
  'scratchBase',
  'scratchSize',
  'ramSize',
  'queueSize',
] as const;
/** `struct boot_info` (guest/abi.h): what the VMM tells the guest, each field a u64. */
export type BootInfo = Record<(typeof BOOT_INFO_FIELDS)[number], bigint>;
/** Bytes of `struct boot_info`. */
export const BOOT_INFO_SIZE = BOOT_INFO_FIELDS.length * 8;

/** `struct results`: seven u64 fields, right after boot_info. */
export const RESULT_FIELDS = [
  'status',
  'completed',
  'verified',
  'failCode',
  'failDetail',
  'deviceStatus',
  'interrupts',
] as const;
/** `struct results` (guest/abi.h): what the guest reports back, each field a u64. */
export type GuestResults = Record<(typeof RESULT_FIELDS)[number], bigint>;
/** Where the results block is: right after `boot_info`. */
export const RESULTS_ADDR = BOOT_INFO_ADDR + BigInt(BOOT_INFO_SIZE);

/** `results.status`: still running, finished, or failed (`failCode` says why). */
export const ResultStatus = { running: 0n, ok: 1n, failed: 2n } as const;

/** Why a guest gave up (`results.failCode`), as a sentence for the user. */
export const FAIL_REASONS: Readonly<Record<number, string>> = {
  0: 'no failure',
  1: 'the boot information block was not recognised',
  2: 'no virtio-blk device answered at the virtio-mmio window',
  3: 'feature negotiation failed (FEATURES_OK not kept)',
  4: 'queue 0 is missing or too small',
  5: 'the disk is too small for the requested work',
  6: 'a request completed with an error status',
  7: 'data read back differs from what was written',
  8: 'the device reported DEVICE_NEEDS_RESET',
};

/** Writes `boot_info` into guest RAM at BOOT_INFO_ADDR. */
export function writeBootInfo(memory: GuestMemory, info: BootInfo): void {
  BOOT_INFO_FIELDS.forEach((field, i) => {
    memory.writeU64(BOOT_INFO_ADDR + BigInt(i * 8), info[field]);
  });
}

/** Reads `results` from guest RAM at RESULTS_ADDR. */
export function readResults(memory: GuestMemory): GuestResults {
  const out = {} as GuestResults;
  RESULT_FIELDS.forEach((field, i) => {
    out[field] = memory.readU64(RESULTS_ADDR + BigInt(i * 8));
  });
  return out;
}
