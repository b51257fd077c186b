/**
 * The rxvmm snapshot file, version 1 (docs/SNAPSHOT.md). Little-endian:
 *
 *   0     magic            8 bytes  "RXVMSNAP"
 *   8     format version   u32      1
 *   12    flags            u32      0 (reserved)
 *   16    state length     u64      bytes of the state JSON
 *   24    memory length    u64      bytes of the memory section
 *   32    state sha256     32 bytes
 *   64    memory sha256    32 bytes
 *   96    writer length    u16      at most 256
 *   98    writer           UTF-8    who wrote it (e.g. "rxvmm-demo 0.1.0")
 *   ...   zero padding to 4096
 *   4096  state            UTF-8 JSON: { "memory": [{ "name", "offset", "length" }], "state": ... }
 *   ...   zero padding to the next multiple of 4096
 *   M     memory           the named segments, back to back (offsets relative to M)
 *   M + memory length = the file's size, exactly.
 *
 * The memory section starts page-aligned so a reader may map it privately
 * (copy-on-write) instead of copying it.
 */

export const SNAPSHOT_MAGIC = 'RXVMSNAP';
/** The format version this package writes and reads; a file of another version is refused. */
export const SNAPSHOT_FORMAT_VERSION = 1;
/** The header's size: the state starts here, and every section on a page boundary. */
export const SNAPSHOT_HEADER_SIZE = 4096;
export const SNAPSHOT_PAGE = 4096;
/** Most bytes of the writer string recorded in the header. */
export const SNAPSHOT_WRITER_MAX = 256;
/** The largest state JSON a reader accepts (the rest of the file is memory). */
export const SNAPSHOT_STATE_MAX = 256 * 1024 * 1024;

/** Field offsets of the header. */
export const Header = {
  magic: 0,
  version: 8,
  flags: 12,
  stateLength: 16,
  memoryLength: 24,
  stateSha256: 32,
  memorySha256: 64,
  writerLength: 96,
  writer: 98,
} as const;

/** One named run of guest memory in the memory section. */
export interface MemorySegmentEntry {
  name: string;
  /** Offset in the memory section. */
  offset: number;
  length: number;
}

/** The JSON document of the state section. */
export interface SnapshotDocument {
  memory: MemorySegmentEntry[];
  state: unknown;
}

export function alignPage(n: number): number {
  return Math.ceil(n / SNAPSHOT_PAGE) * SNAPSHOT_PAGE;
}

/** Where the memory section starts for a state of `stateLength` bytes. */
export function memoryOffset(stateLength: number): number {
  return alignPage(SNAPSHOT_HEADER_SIZE + stateLength);
}
